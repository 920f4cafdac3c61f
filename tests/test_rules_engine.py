"""The compiled engine: spans, scoring, tags, and agreement with a naive evaluator."""

from __future__ import annotations

import pickle
import random
import re
from bisect import bisect_right

import pytest

from core.types import Match
from rules import QueryError, Rule, build_ruleset, format_tagging, highlight, parse_query, snippets
from rules.query import And, Near, Node, Not, Or, Term
import rules.engine as engine
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


def test_one_occurrence_is_reported_once_per_rule() -> None:
    # Two spellings of one term, a term used twice, a NEAR of a term with itself.
    t = one_rule("OpenAI OR openai").evaluate({"text": "OpenAI talks"})
    assert t.matches == [Match("r", "OpenAI", "text", 0, 6)]
    t = one_rule("IPO AND (IPO OR listing)").evaluate({"text": "an IPO listing"})
    assert t.matches == [Match("r", "IPO", "text", 3, 6), Match("r", "listing", "text", 7, 14)]
    t = one_rule("IPO NEAR/2 IPO").evaluate({"text": "IPO and IPO, and then a third IPO"})
    assert [(m.start, m.end) for m in t.matches] == [(0, 3), (8, 11)]
    assert one_rule("IPO NEAR/2 IPO").evaluate({"text": "one IPO only"}).matches == []


def test_near_in_the_title_counts_the_title_weight() -> None:
    rs = one_rule("Microsoft NEAR/3 OpenAI", weight=2.0)
    assert rs.evaluate({"title": "Microsoft and OpenAI", "text": "x"}).score == 3.0
    assert rs.evaluate({"title": "x", "text": "Microsoft and OpenAI"}).score == 2.0
    # One side in the title and the other in the text is not near.
    assert rs.evaluate({"title": "Microsoft", "text": "OpenAI"}).score == 0.0


def test_rule_text_never_becomes_code() -> None:
    # Rule names, tags and terms reach the compiled functions as values, never as source.
    hostile = ['x"); import os; os._exit(3) #', "a\\nb", "{v0}", "__import__('os')", "q'''q", "é\u2028z"]
    rules = [
        Rule(name, (f"tag{i}",), "q", 1.0, parse_query(f"word{i} OR \"{name.replace(chr(34), ' ')}\""))
        for i, name in enumerate(hostile)
    ]
    rs = build_ruleset(rules, threshold=1.0)
    t = rs.evaluate({"text": "word0 word1 word2 word3 word4 word5"})
    assert sorted(m.rule for m in t.matches) == sorted(hostile)
    assert t.tags == [f"tag{i}" for i in range(len(hostile))]
    t = rs.evaluate({"text": "then x ); import os; os._exit(3) # ran"})
    assert [(m.rule, m.term) for m in t.matches] == [(hostile[0], '"x ); import os; os._exit(3) #"')]


def test_rule_set_pickles_and_compiles_again() -> None:
    # Parser worker processes receive the rule set pickled.
    rs = one_rule("@openai NEAR/5 (=IPO OR listing*) NOT Stargate")
    fields = {"title": "OpenAI IPO", "text": "Sam Altman and the listings"}
    copy = pickle.loads(pickle.dumps(rs))
    assert copy.version == rs.version and copy.evaluate(fields) == rs.evaluate(fields)
    assert copy.evaluate(fields).flagged


def test_rules_of_one_shape_share_one_compiled_function() -> None:
    # Compiling a function per rule made 10,000 rules take seconds to load.
    rules = [Rule(f"r{i}", ("t",), "q", 1.0, parse_query(f"w{i} AND (x{i} OR y{i})")) for i in range(300)]
    rs = build_ruleset(rules, threshold=1.0)
    assert len({fn.__code__ for fn in rs._fns}) == 1
    t = rs.evaluate({"text": "w7 y7 w8 x9"})
    assert [m.rule for m in t.matches] == ["r7", "r7"]


def test_a_two_thousand_term_alias() -> None:
    names = [f"Company{i}" for i in range(2000)]
    rs = one_rule("@big NEAR/3 =IPO", {"big": names})
    assert rs.evaluate({"text": "Company1999 plans an IPO"}).flagged
    assert not rs.evaluate({"text": "Company2000 plans an IPO"}).flagged


@pytest.mark.parametrize(
    ("query", "text", "span"),
    [
        # Non-ASCII text goes through the regex path, ASCII through str.translate: same answers.
        ("OpenAI", "Sam Altman\u2019s OpenAI \u2014 and more", "OpenAI"),
        ("\"OpenAI's board\"", "OpenAI\u2019s\u00a0board met", "OpenAI\u2019s\u00a0board"),
        ("Société", "La Société Générale a dit", "Société"),
        ("Straße", "in der Straße\u2009heute", "Straße"),
        ("naïv*", "une idée naïvement simple", "naïvement"),
        ("\"public benefit\"", "a public\u2028benefit firm", "public\u2028benefit"),
        ("İstanbul", "İstanbul'da bugün", "İstanbul"),
        ("data", "a «data» center", "data"),
    ],
)
def test_unicode_text(query: str, text: str, span: str) -> None:
    t = one_rule(query).evaluate({"text": text})
    assert [text[m.start : m.end] for m in t.matches] == [span]


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("Société", "les Sociétés anonymes"),
        ("naïv", "une idée naïve"),
        ("Straße", "die Straßenbahn"),
        ('"public benefit"', "a public–benefit firm"),
        ("=Société", "la société"),
        ("İstanbul", "Istanbul"),
    ],
)
def test_unicode_near_misses(query: str, text: str) -> None:
    assert one_rule(query).evaluate({"text": text}).matches == []


def test_spans_point_into_the_text_as_given_across_collapsed_whitespace() -> None:
    text = "Intro.\n\n\n  Microsoft   and\tOpenAI\r\n\r\nsigned  a  deal.  IPO"
    t = one_rule('Microsoft NEAR/2 OpenAI OR "a deal" OR IPO').evaluate({"text": text})
    assert [text[m.start : m.end] for m in t.matches] == ["Microsoft", "OpenAI", "a  deal", "IPO"]


def test_word_starts_are_where_the_word_regex_finds_words() -> None:
    # NEAR counts words by word_starts, read off the word-space text; the regex is its definition.
    rng = random.Random(3)
    alphabet = "ab9_'-’ é.\n,ZİÖ\u0345²"
    rs = one_rule("a")
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        _, texts = rs._scan({"text": text})
        ft = texts[1]
        if ft is not None:
            assert ft.word_starts() == [m.start() for m in engine._WORD.finditer(ft.norm)], repr(text)


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
        tagging = rs.evaluate(fields)
        got = {m.rule for m in tagging.matches}
        fired = {r.name for r in rules if _ref(r.node, fields)}
        assert got == fired, (fields, sorted(got ^ fired))
        # Weight 1 each, 1.5 for a rule with a match in the title.
        assert tagging.score == len(fired) + 0.5 * len({m.rule for m in tagging.matches if m.field == "title"})
        # A one-term rule reports exactly the occurrences the regex finds, in its fields.
        for r in rules:
            if isinstance(r.node, Term):
                spans = {(m.field, m.start, m.end) for m in tagging.matches if m.rule == r.name}
                expected = {(f, s, e) for f in r.node.fields for s, e in _ref_positions(r.node, fields.get(f, ""))}
                assert spans == expected, (r.query, fields)


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
