"""The compiled engine: spans, scoring, tags, and agreement with a naive evaluator."""

from __future__ import annotations

import random
from bisect import bisect_right
import re

import pytest

from monitor.model import Match
from rules import QueryError, Rule, build_ruleset, format_tagging, highlight, parse_query, snippets
from rules.query import And, Near, Node, Not, Or, Term
from rules_helpers import one_rule


def test_matches_record_rule_term_field_and_original_span() -> None:
    text = "Talks between Microsoft and\n\n   OpenAI\u2019s board"
    tagging = one_rule("Microsoft NEAR/3 OpenAI").evaluate({"text": text})
    assert tagging.matches == [
        Match("r", "Microsoft", "text", 14, 23),
        Match("r", "OpenAI", "text", 32, 38),
    ]
    # spans are offsets into the text as given, even where whitespace was collapsed
    assert [text[m.start : m.end] for m in tagging.matches] == ["Microsoft", "OpenAI"]


def test_phrase_span_covers_collapsed_whitespace_and_prefix_extends_to_word_end() -> None:
    text = "a public \n benefit corporation; renegotiations"
    rs = one_rule('"public benefit corporation" AND renegotiat*')
    spans = [text[m.start : m.end] for m in rs.evaluate({"text": text}).matches]
    assert spans == ["public \n benefit corporation", "renegotiations"]


def test_title_weight_tags_and_tag_scores() -> None:
    rules = [
        Rule("ipo", ("ipo",), "q", 3.0, parse_query("=IPO")),
        Rule("pbc", ("pbc", "partnership"), "q", 1.0, parse_query('"public benefit corporation"')),
        Rule("never", ("x",), "q", 5.0, parse_query("Stargate")),
    ]
    rs = build_ruleset(rules, threshold=4.0, title_weight=2.0)
    t = rs.evaluate({"title": "IPO ahead", "text": "a public benefit corporation"})
    assert (t.score, t.flagged, t.tags) == (7.0, True, ["ipo", "partnership", "pbc"])
    assert t.tag_scores == {"ipo": 6.0, "pbc": 1.0, "partnership": 1.0}
    t = rs.evaluate({"title": "nothing", "text": "an IPO"})
    assert (t.score, t.flagged, t.tags) == (3.0, False, ["ipo"])
    t = rs.evaluate({"title": "", "text": ""})
    assert (t.score, t.flagged, t.tags, t.matches) == (0.0, False, [], [])


def test_not_terms_do_not_appear_as_matches_and_unknown_fields_are_ignored() -> None:
    rs = one_rule("Copilot NOT GitHub")
    t = rs.evaluate({"text": "Copilot news", "body": "GitHub", "title": None})  # type: ignore[dict-item]
    assert t.flagged and [m.term for m in t.matches] == ["Copilot"]


def test_same_term_in_two_rules_is_reported_for_each() -> None:
    rules = [Rule("a", ("t",), "q", 1.0, parse_query("OpenAI")), Rule("b", ("u",), "q", 1.0, parse_query("openai"))]
    t = build_ruleset(rules).evaluate({"text": "OpenAI"})
    assert sorted(m.rule for m in t.matches) == ["a", "b"] and t.score == 2.0


# ---------------------------------------------------------------- a naive reference

WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "alp", "Beta", "BETA"]


def _ref_positions(term: Term, field_text: str) -> list[tuple[int, int]]:
    body = r"\s+".join(re.escape(w) for w in term.text.split(" "))
    pattern = r"(?<!\w)" + body + (r"\w*" if term.prefix else r"(?!\w)")
    flags = 0 if term.exact is not None else re.IGNORECASE
    return [(m.start(), m.end()) for m in re.finditer(pattern, field_text, flags)]


def _ref(node: Node, fields: dict[str, str]) -> bool:
    if isinstance(node, Term):
        return any(_ref_positions(node, fields.get(f, "")) for f in node.fields)
    if isinstance(node, And):
        return all(_ref(c, fields) for c in node.children)
    if isinstance(node, Or):
        return any(_ref(c, fields) for c in node.children)
    if isinstance(node, Not):
        return not _ref(node.child, fields)
    assert isinstance(node, Near)

    def occ(n: Node) -> list[tuple[str, int, int]]:
        terms = [n] if isinstance(n, Term) else list(n.children)  # type: ignore[union-attr]
        return [(f, s, e) for t in terms for f in t.fields for s, e in _ref_positions(t, fields.get(f, ""))]  # type: ignore[arg-type]

    for fa, sa, ea in occ(node.left):
        for fb, sb, eb in occ(node.right):
            if fa != fb or not (ea <= sb or eb <= sa):
                continue
            # word index = how many words start at or before a position ("it's" is one word)
            starts = [m.start() for m in re.finditer(r"\w+(?:['\-]\w+)*", fields[fa])]
            first_end, second_start = (ea, sb) if ea <= sb else (eb, sa)
            if bisect_right(starts, second_start) - bisect_right(starts, first_end - 1) <= node.distance:
                return True
    return False


def _random_query(rng: random.Random, depth: int = 0) -> str:
    def term() -> str:
        w = rng.choice(WORDS)
        kind = rng.random()
        if kind < 0.15:
            return "=" + w
        if kind < 0.25:
            return w[:4] + "*"
        if kind < 0.4:
            return f'"{w} {rng.choice(WORDS)}"'
        return w

    r = rng.random()
    if depth > 2 or r < 0.3:
        return rng.choice(["", "", "title:"]) + term()
    if r < 0.5:
        return f"({term()} NEAR/{rng.randint(1, 4)} ({term()} OR {term()}))"
    if r < 0.7:
        return f"({_random_query(rng, depth + 1)} OR {_random_query(rng, depth + 1)})"
    if r < 0.85:
        return f"({_random_query(rng, depth + 1)} AND {_random_query(rng, depth + 1)})"
    return f"({_random_query(rng, depth + 1)} NOT {_random_query(rng, depth + 1)})"


@pytest.mark.parametrize("seed", range(5))
def test_engine_agrees_with_naive_regex_evaluation(seed: int) -> None:
    rng = random.Random(seed)
    rules = []
    for i in range(60):
        q = _random_query(rng)
        try:
            node = parse_query(q)
        except QueryError:  # e.g. a NOT-only query: refused by design
            continue
        rules.append(Rule(f"r{i}", ("t",), q, 1.0, node))
    assert len(rules) > 30
    rs = build_ruleset(rules, threshold=100.0)
    for _ in range(40):
        fields = {
            "title": " ".join(rng.choice(WORDS + ["x"]) for _ in range(rng.randint(0, 5))),
            "text": " ".join(rng.choice(WORDS + ["x", "y-z", "it's"]) for _ in range(rng.randint(0, 30))),
        }
        # Every rule that fires records at least one match (parsing forbids NOT-only rules).
        got = {m.rule for m in rs.evaluate(fields).matches}
        fired = {r.name for r in rules if _ref(r.node, fields)}
        assert got == fired, (fields, sorted(got ^ fired))


# ---------------------------------------------------------------- explanation text


def test_highlight_and_snippets_merge_overlaps() -> None:
    assert highlight("OpenAI plans an IPO", [(0, 6), (16, 19), (3, 6)]) == "«OpenAI» plans an «IPO»"
    assert highlight("abc", [(0, 3)], "\x1b[1m", "\x1b[0m") == "\x1b[1mabc\x1b[0m"
    text = "x " * 50 + "OpenAI" + " y" * 50 + " IPO" + " z" * 50
    parts = snippets(text, [(100, 106), (207, 210)], context=10)
    assert parts == ["…x x x x x «OpenAI» y y y y y…", "…y y y y y «IPO» z z z z z…"]


def test_format_tagging_lists_verdict_rules_and_marked_text() -> None:
    rs = one_rule("@openai NEAR/5 =IPO", weight=3.0)
    fields = {"title": "OpenAI weighs an IPO", "text": "Nothing here."}
    out = format_tagging(rs.evaluate(fields), fields, threshold=rs.threshold, rules=rs)
    assert out.splitlines() == [
        "score 4.5 (threshold 3): FLAGGED",
        "tags: t (4.5)",
        "rules matched:",
        "  r [weight 3; t]: =IPO in title; OpenAI in title",
        "title: «OpenAI» weighs an «IPO»",
    ]
