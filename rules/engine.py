"""Compiled rule sets: one Aho-Corasick pass per field, then only the rules hit.

`RuleSet.evaluate` is the hot path of tagging. Every distinct term of every
rule goes into one automaton. Each field is normalised (typographic
apostrophes and hyphens folded, whitespace collapsed, case folded, all with
an offset map back to the text as given) and scanned once; the automaton
only yields hits that start and end on word boundaries (see `_pattern`),
which are re-checked where a term holds punctuation and, for case-sensitive
terms, against their exact spelling.

What the scan finds is keyed by an int, ``term id << 3 | field index``, so
"does term t occur in field f" is one dict lookup. Each rule is indexed
under a "cover" of such keys, one of which must have occurred for the rule
to be true; only rules whose cover was hit are evaluated, so the cost per
article follows the number of hits, not the number of rules.

Each rule is compiled to a small Python function (see `_Codegen`) that
tests its boolean structure with dict lookups and, when it is true, appends
its match rows. Rules of the same shape share one compiled code object;
the generated source holds nothing from a rule file but parameter names,
the rule's keys, labels and name being its parameters' default values, so
no rule text can become code. A compiled set pickles as its rules and
settings and is compiled again where it is unpickled (the parser worker
processes).

This module does no I/O and imports nothing from the project but
`core`; rule files are read by `rules.load`.
"""

from __future__ import annotations

import hashlib
import json
import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import accumulate, chain, compress, count, filterfalse
from operator import add, itemgetter
from types import FunctionType
from typing import Any

import ahocorasick

from core.types import Match, Tagging
from rules.query import (
    FIELDS,
    LEAD_WORDS,
    And,
    Count,
    Near,
    Node,
    Not,
    Or,
    Term,
    all_terms,
    fold,
    positive_terms,
    render,
)

DEFAULT_THRESHOLD = 2.0
DEFAULT_TITLE_WEIGHT = 1.5

# A "word" for NEAR distances: letters/digits joined by apostrophes or hyphens,
# so "OpenAI's" and "Microsoft-backed" are one word each. The definition:
# `_FieldText.word_starts` finds the same words faster (a test holds them equal).
_WORD = re.compile(r"\w+(?:['\-]\w+)*")
_PLAIN = re.compile(r"\w+$")

# Hit keys: term id << _FIELD_BITS | index of the field in FIELDS.
_FIELD_BITS = 3
_FIELD_MASK = (1 << _FIELD_BITS) - 1
assert len(FIELDS) <= 1 << _FIELD_BITS
_TITLE = FIELDS.index("title")
_TEXT = FIELDS.index("text")
# "lead" hits are the text's hits in its first LEAD_WORDS words (see `RuleSet._lead`);
# their matches name the field they are in, "text", so they highlight there.
_LEAD = FIELDS.index("lead")
_FIELD_NAMES = tuple("text" if f == "lead" else f for f in FIELDS)
# A sorted row becomes a Match in C: reorder its fields, then build the named
# tuple without its Python-level __new__ (about half the cost).
_match_fields = itemgetter(3, 4, 5, 1, 2)
_as_match = partial(tuple.__new__, Match)


@dataclass(frozen=True)
class Rule:
    """One compiled rule, with where it was written (for error messages and `check`)."""

    name: str
    tags: tuple[str, ...]
    query: str
    weight: float  # below 0 for a penalty rule
    node: Node
    source: str = ""
    file: str = ""
    line: int | None = None
    title_weight: float | None = None  # None: the rule set's


@dataclass
class _FieldText:
    norm: str
    # (breaks, shifts) where collapsing whitespace shifted offsets, if it did:
    # from norm offset breaks[i] on, the offset in the text as given is
    # shifts[i] more (breaks[0] is 0).
    collapsed: tuple[list[int], list[int]] | None
    # The word-space text the scan read (see `RuleSet._pattern`): spaced[i + 1] is norm[i].
    spaced: str = ""
    _word_starts: list[int] | None = None

    def word_starts(self) -> list[int]:
        """Where each word (as `_WORD` reads words) starts in ``norm``: NEAR counts words by these.

        Read off the word-space text in C (its runs of word characters are
        words) rather than by a regex match per word, which cost three times
        as much; then a run that an apostrophe or hyphen joins to the word
        before it ("OpenAI's", "Microsoft-backed") is dropped as a start.
        """
        if self._word_starts is None:
            spaced, norm = self.spaced, self.norm
            parts = spaced.split(" ")
            # Part i starts at the lengths of the parts before it plus i spaces; norm is one behind.
            starts = list(compress(map(add, accumulate(map(len, parts), initial=0), count(-1)), parts))
            joined = set()
            for joiner in "'-":
                i = norm.find(joiner, 1)
                while i != -1:
                    if spaced[i] != " ":  # after a word: what follows, if a word, is joined to it
                        joined.add(i + 1)
                    i = norm.find(joiner, i + 1)
            self._word_starts = list(filterfalse(joined.__contains__, starts)) if joined else starts
        return self._word_starts


# The same 1:1 folding `rules.query.canonical` applies to patterns, plus every
# whitespace character to a plain space.
_SAME = {
    "\u2019": "'",
    "\u2018": "'",
    "\u02bc": "'",
    "\u2010": "-",
    "\u2011": "-",
    **{chr(c): " " for c in range(0x3001) if chr(c).isspace() and c != 0x20},
}
# str.translate is fast on ASCII text only: on any other text it looks every
# character up in the table (measured on the corpus feeds: 70 us for a
# 1.2 KB article, 6 us with the regex, which only stops at what it replaces).
_SAME_TABLE = str.maketrans(_SAME)
_SAME_RE = re.compile("[" + "".join(map(re.escape, _SAME)) + "]")
_SPACES = re.compile(r" {2,}")
_NONWORD_TABLE = str.maketrans({c: " " for c in range(128) if not (chr(c).isalnum() or chr(c) == "_")})
_NONWORD_RE = re.compile(r"[^\w ]")  # \w is exactly str.isalnum() or "_"


def _same(text: str) -> str:
    if text.isascii():
        return text.translate(_SAME_TABLE)
    return _SAME_RE.sub(lambda m: _SAME[m.group()], text)


def _word_space(text: str) -> str:
    """Every non-word character of ``text`` turned into a space, one for one."""
    if text.isascii():
        return text.translate(_NONWORD_TABLE)
    return _NONWORD_RE.sub(" ", text)


def _normalise(text: str) -> _FieldText:
    """Map typographic variants and whitespace 1:1, then collapse runs of spaces
    (phrases are compiled with single spaces), noting where offsets shift: one
    entry per run, not a map of every character (paragraph breaks are in
    nearly every article). Clean single-spaced text costs one translate."""
    norm = _same(text)
    if "  " not in norm:
        return _FieldText(norm, None)
    parts: list[str] = []
    breaks, shifts = [0], [0]
    last = 0
    for m in _SPACES.finditer(norm):
        parts.append(norm[last : m.start() + 1])  # keep one space of the run
        last = m.end()
        # The run's one space maps to its first; what follows it, past the rest.
        breaks.append(m.start() + 1 - shifts[-1])
        shifts.append(last - breaks[-1])
    parts.append(norm[last:])
    return _FieldText("".join(parts), (breaks, shifts))


# What the scan found: hit key -> (start, end) spans in that field's normalised text.
_Hits = dict[int, list[tuple[int, int]]]
# One match before it becomes a Match: field index, start, end, rule name, term
# label, field name. Tuples sort in the order matches are reported.
_Row = tuple[int, int, int, str, str, str]
# NEAR results of one article, by proximity index: (field index, start, end, term label, field name).
_Near = tuple[int, int, int, str, str]
_NearFn = Callable[[int], list[_Near]]
# A compiled rule: when true, appends its rows, adds its weight to each of its
# tags' scores and returns the weight; when false, returns 0.
_RuleFn = Callable[[_Hits, _NearFn, list[_Row], dict[str, float]], float]
# A term whose hits need more than their position (see `RuleSet._pattern`):
# (back, length, folded term to re-check or None, prefix, base key, exact spelling or None).
_Check = tuple[int, int, str | None, bool, int, str | None]


class _Prefix(tuple[int, int]):
    """The automaton value of a one-word prefix term: (base key, length)."""

    __slots__ = ()


class RuleSet:
    """A compiled, immutable set of rules. Build it with `rules.load_rules`."""

    def __init__(
        self,
        rules: Sequence[Rule],
        *,
        threshold: float = DEFAULT_THRESHOLD,
        title_weight: float = DEFAULT_TITLE_WEIGHT,
        aliases: Mapping[str, Sequence[str]] | None = None,
        files: Sequence[str] = (),
        warnings: Sequence[str] = (),
    ):
        self.rules: tuple[Rule, ...] = tuple(rules)
        # What `rules check` shows: likely mistakes that still load (see `rules.load`).
        self.warnings = tuple(warnings)
        self.threshold = float(threshold)
        self.title_weight = float(title_weight)
        self.aliases: dict[str, list[str]] = {k: list(v) for k, v in (aliases or {}).items()}
        self.files = tuple(files)
        self._compile()
        self.version = self._version()

    # Generated functions do not pickle; the rules do, and compile again.
    def __reduce__(self) -> tuple[Any, ...]:
        compile_again = partial(
            RuleSet, self.rules, threshold=self.threshold, title_weight=self.title_weight,
            aliases=self.aliases, files=self.files,
        )
        return compile_again, ()

    # ------------------------------------------------------------ compile

    def _compile(self) -> None:
        gen = _Codegen(self.title_weight)
        shapes: dict[str, Callable[..., _RuleFn]] = {}
        key_rules: dict[int, list[int]] = {}
        self._fns: list[_RuleFn] = []
        for r_index, rule in enumerate(self.rules):
            for term in all_terms(rule.node):  # labels and term ids in the order terms are written
                gen.label(term)
            cover = gen.cover(rule.node)
            if not cover:  # parse_query refuses such rules; build_ruleset callers may not
                raise ValueError(f"rule {rule.name} can match without any term occurring")
            for key in sorted(cover):
                key_rules.setdefault(key, []).append(r_index)
            source, values = gen.function(rule)
            shape = shapes.get(source)
            if shape is None:
                namespace: dict[str, Any] = {"_count": _count}
                exec(compile(source, "<rule>", "exec"), namespace)
                shape = shapes[source] = namespace["rule"]
            self._fns.append(FunctionType(shape.__code__, shape.__globals__, "rule", tuple(values)))
        # The rule functions to run when a key is hit, by key (a list: every key is small).
        self._key_rules: list[tuple[_RuleFn, ...] | None] = [None] * (len(gen.terms) << _FIELD_BITS)
        for key, indexes in key_rules.items():
            self._key_rules[key] = tuple(self._fns[i] for i in indexes)
        self._nears = gen.nears
        self._lead_keys = frozenset(k for keys in gen.all_keys() for k in keys if k & _FIELD_MASK == _LEAD)
        self._automaton = self._build_automaton(gen.terms)

    def _build_automaton(self, terms: Sequence[Term]) -> ahocorasick.Automaton | None:
        by_pattern: dict[str, list[_Check]] = {}
        for tid, term in enumerate(terms):
            for pattern, check in self._patterns(term, tid << _FIELD_BITS):
                # "gpt-4" and "gpt 4", "=IPO" and "ipo" share a pattern; the re-check tells them apart.
                by_pattern.setdefault(pattern, []).append(check)
        if not by_pattern:
            return None
        automaton = ahocorasick.Automaton()
        for pattern, checks in by_pattern.items():
            back, length, folded, prefix, base, exact = checks[0]
            if len(checks) > 1 or folded is not None or exact is not None:
                automaton.add_word(pattern, checks)
            elif prefix:  # the start of one word, any case: `_scan` handles it inline
                automaton.add_word(pattern, _Prefix((base, length)))
            else:  # one word, any case: (base key, how far back from the space after it it starts)
                automaton.add_word(pattern, (base, length + 1))
        automaton.make_automaton()
        return automaton

    def _patterns(self, term: Term, base: int) -> list[tuple[str, _Check]]:
        """The term's pattern and, for a phrase of two words, the two words joined.

        ``"data center"`` also finds "datacenter" and ``"Open AI"`` "OpenAI"
        (hyphenated forms it finds anyway: a hyphen and a space are the same
        between words). Only two-word phrases of plain words are joined:
        longer ones rarely occur joined, and their joins read as other words.
        """
        out = [self._pattern(term, base)]
        words = term.key.replace("-", " ").split(" ")
        if len(words) == 2 and all(_PLAIN.match(w) for w in words):
            joined = Term(
                text=term.text.replace("-", " ").replace(" ", ""),
                key="".join(words),
                exact=term.exact.replace("-", " ").replace(" ", "") if term.exact is not None else None,
                prefix=term.prefix,
                fields=term.fields,
            )
            out.append(self._pattern(joined, base))
        return out

    def _pattern(self, term: Term, base: int) -> tuple[str, _Check]:
        """A term's automaton pattern, and what a hit on it must still pass.

        The automaton scans a "word-space" copy of the folded text: a space
        in front, every non-word character turned into a space, a space at
        the end. A pattern is the term written the same way with a space in
        front (so it can only match at the start of a word) and, unless it
        is a prefix, a space behind (so it can only match at the end of
        one). Hits inside words, which dominate raw Aho-Corasick hits, are
        never produced. A term holding non-word characters is re-checked
        against the folded text, a case-sensitive one against the text, in
        both cases with hyphens read as spaces.
        """
        key = term.key
        spaced = _word_space(key)
        # A term that starts with a non-word character ("$13") has its
        # left boundary built in; one that ends with one, its right.
        lead = 0 if spaced.startswith(" ") else 1
        pattern = " " * lead + spaced
        if not term.prefix and not pattern.endswith(" "):
            pattern += " "
        needs_check = any(not (c.isalnum() or c == "_") for c in key)
        folded = key.replace("-", " ") if needs_check else None
        exact = term.exact.replace("-", " ") if term.exact is not None else None
        return pattern, (len(pattern) - lead, len(key), folded, term.prefix, base, exact)

    def _version(self) -> str:
        payload = {
            "threshold": self.threshold,
            "title_weight": self.title_weight,
            "rules": [
                [r.name, list(r.tags), r.weight, render(r.node)] + ([r.title_weight] if r.title_weight is not None else [])
                for r in self.rules
            ],
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()[:12]

    # ------------------------------------------------------------ match

    def _scan(self, fields: Mapping[str, str | None]) -> tuple[_Hits, list[_FieldText | None]]:
        hits: defaultdict[int, list[tuple[int, int]]] = defaultdict(list)
        texts: list[_FieldText | None] = [None] * len(FIELDS)
        automaton = self._automaton
        if automaton is None:
            return hits, texts
        for fi, name in enumerate(FIELDS):
            raw = fields.get(name)
            if not raw:
                continue
            ft = texts[fi] = _normalise(raw)
            norm = ft.norm
            low = fold(norm)
            # Hyphens read as spaces where a hit is re-checked: "data center" finds "data-center".
            low_h = low.replace("-", " ") if "-" in low else low
            norm_h: str | None = None
            spaced = ft.spaced = " " + _word_space(low) + " "
            # spaced[i] is low[i - 1]; `end` is where the pattern's last character is.
            for end, value in automaton.iter(spaced):
                if value.__class__ is tuple:  # one word: spaced[end] is the space after it
                    hits[value[0] | fi].append((end - value[1], end - 1))
                    continue
                if value.__class__ is _Prefix:  # the start of one word: it goes on to the next space
                    hits[value[0] | fi].append((end - value[1], spaced.find(" ", end) - 1))
                    continue
                for back, length, folded, prefix, base, exact in value:
                    start = end - back
                    stop = start + length
                    if folded is not None and (start < 0 or low_h[start:stop] != folded):
                        continue
                    if exact is not None:
                        if norm_h is None:
                            norm_h = norm.replace("-", " ")
                        if norm_h[start:stop] != exact:
                            continue
                    if prefix:  # to the end of the word: the next space in `spaced`
                        stop = spaced.find(" ", stop + 1) - 1
                    hits[base | fi].append((start, stop))
        if self._lead_keys and texts[_TEXT] is not None:
            self._lead(hits, texts)
        return hits, texts

    def _lead(self, hits: defaultdict[int, list[tuple[int, int]]], texts: list[_FieldText | None]) -> None:
        """Add "lead" hits: the text hits of lead terms that start in the text's first LEAD_WORDS words."""
        ft = texts[_LEAD] = texts[_TEXT]
        assert ft is not None
        starts = ft.word_starts()
        cutoff = starts[LEAD_WORDS] if len(starts) > LEAD_WORDS else len(ft.norm) + 1
        lead_keys = self._lead_keys
        for key in [k for k in hits if k & _FIELD_MASK == _TEXT]:
            lead_key = key - _TEXT + _LEAD
            if lead_key in lead_keys:
                found = [h for h in hits[key] if h[0] < cutoff]
                if found:
                    hits[lead_key] = found

    def evaluate(self, fields: Mapping[str, str | None]) -> Tagging:
        """Score one article's fields (`title`, `text`, `author`, `url`, `feed`).

        Missing or empty fields are simply not searched. Returns the score,
        whether it reaches the threshold, the union of the matching rules'
        tags, per-tag weights, and every occurrence that made a rule match.
        """
        hits, texts = self._scan(fields)
        if not hits:
            return Tagging()
        # Each rule once, in the order the text reaches it: deterministic, and no sort.
        candidates = dict.fromkeys(chain.from_iterable(filter(None, map(self._key_rules.__getitem__, hits))))
        if not candidates:
            return Tagging()
        near = _Proximity(hits, texts, self._nears).near
        score = 0.0
        tag_scores: dict[str, float] = {}
        rows: list[_Row] = []
        for rule in candidates:
            score += rule(hits, near, rows, tag_scores)
        if not rows:
            return Tagging()
        rows.sort()
        if any(ft is not None and ft.collapsed is not None for ft in texts):
            rows = _to_original(rows, texts)
        matches = list(map(_as_match, map(_match_fields, rows)))
        score = round(score, 6)
        # A penalty rule lowers its tags' weights; a tag left at 0 or below is not the article's.
        tag_scores = {k: round(v, 6) for k, v in tag_scores.items() if round(v, 6) > 0}
        return Tagging(
            score=score,
            flagged=score >= self.threshold,
            tags=sorted(tag_scores),
            matches=matches,
            tag_scores=tag_scores,
        )

    def rule(self, name: str) -> Rule | None:
        for r in self.rules:
            if r.name == name:
                return r
        return None

    def __len__(self) -> int:
        return len(self.rules)

    def __repr__(self) -> str:
        return f"RuleSet({len(self.rules)} rules, threshold={self.threshold}, version={self.version})"


# A NEAR node, compiled: each side's (label, keys) per term, and the distance.
_NearSpec = tuple[tuple[tuple[str, tuple[int, ...]], ...], tuple[tuple[str, tuple[int, ...]], ...], int]


class _Codegen:
    """Turns rule trees into Python functions over hit keys.

    Terms that find the same occurrences (same folded text, case rule and
    prefix flag) share a term id; a term's hit keys are its id combined
    with each field it looks in. Equal NEAR nodes share one proximity index,
    so one article computes them once for every rule that uses them.

    `function` writes a rule as the source of a function whose parameters
    ``v0, v1, ...`` stand for the rule's keys, term labels, proximity
    indexes, name, weights and tags, and returns it with their values.
    Rules of the same shape have the same source, so a set of 10,000 rules
    compiles a handful of code objects, not 10,000; each rule is that code
    with its values as the parameters' defaults (defaults sit in one tuple,
    which a call reads faster than closure cells). The function keeps the
    `_RuleFn` contract: given the hits ``H``, the proximity lookup ``N``,
    the article's rows and tag scores, it appends its rows (to a list of its
    own first when one occurrence could be reported twice), adds its weight
    to its tags and returns the weight, or 0.0 when the rule is false.
    """

    def __init__(self, title_weight: float) -> None:
        self.title_weight = title_weight
        self.terms: list[Term] = []
        self.nears: list[_NearSpec] = []
        self._tids: dict[tuple[str, str | None, bool], int] = {}
        self._keys: dict[tuple[tuple[str, str | None, bool], frozenset[str]], tuple[int, ...]] = {}
        self._labels: dict[tuple[tuple[str, str | None, bool], frozenset[str]], str] = {}
        self._near_ids: dict[Near, int] = {}
        self._sides: dict[tuple[tuple[str, tuple[int, ...]], ...], tuple[tuple[str, tuple[int, ...]], ...]] = {}
        self._values: list[Any] = []

    def all_keys(self) -> list[tuple[int, ...]]:
        return list(self._keys.values())

    def keys(self, term: Term) -> tuple[int, ...]:
        found = self._keys.get((term.ident, term.fields))
        if found is not None:
            return found
        tid = self._tids.get(term.ident)
        if tid is None:
            tid = self._tids[term.ident] = len(self.terms)
            self.terms.append(term)
        keys = tuple(tid << _FIELD_BITS | i for i, f in enumerate(FIELDS) if f in term.fields)
        self._keys[(term.ident, term.fields)] = keys
        return keys

    def label(self, term: Term) -> str:
        """How matches name the term: as first written ("OpenAI" and "openai" find the same)."""
        label = self._labels.get((term.ident, term.fields))
        if label is None:
            self.keys(term)
            label = self._labels[(term.ident, term.fields)] = term.display()
        return label

    def near(self, node: Near) -> int:
        index = self._near_ids.get(node)
        if index is None:
            index = self._near_ids[node] = len(self.nears)
            left, right = (tuple((self.label(t), self.keys(t)) for t in _side_terms(side)) for side in (node.left, node.right))
            # Equal sides are one object, so that an article finds their occurrences once (`_Proximity._side`).
            left, right = self._sides.setdefault(left, left), self._sides.setdefault(right, right)
            self.nears.append((left, right, node.distance))
        return index

    def function(self, rule: Rule) -> tuple[str, list[Any]]:
        """The source of one rule's function and the values of its parameters."""
        self._values = []
        name = self._value(rule.name)
        node = rule.node
        # Rows a rule reports are distinct unless a term (in the same fields) appears twice in it.
        keys = [self.keys(t) for t in positive_terms(node)]
        dedupe = len(keys) != len(set(keys))
        lines = ["    def rule(H, N, rows, tag_scores, {params}):"]
        if _monotone(node):
            lines.append("        t = 0")
        else:
            lines += [f"        if not {self.truth(node)}:", "            return 0.0", "        t = 1"]
        if dedupe:
            lines.append("        out = []")
        lines += self.collect(node, name, "out" if dedupe else "rows", 2)
        if dedupe:
            lines.append("        rows.extend(dict.fromkeys(out))")
        if _monotone(node):
            lines += ["        if not t:", "            return 0.0"]
        # A match in the title counts title_weight times the weight.
        title_weight = rule.title_weight if rule.title_weight is not None else self.title_weight
        lines.append(f"        w = {self._value(rule.weight * title_weight)} if t == 3 else {self._value(rule.weight)}")
        for tag in rule.tags:
            tag = self._value(tag)
            lines.append(f"        tag_scores[{tag}] = tag_scores.get({tag}, 0.0) + w")
        lines += ["        return w", ""]
        values, self._values = self._values, []
        params = ", ".join(f"v{i}" for i in range(len(values)))
        return "\n".join(line[4:] for line in lines).replace("{params}", params), values

    def _value(self, value: Any) -> str:
        self._values.append(value)
        return f"v{len(self._values) - 1}"

    def truth(self, node: Node) -> str:
        """A Python expression that is true when ``node`` is, over ``H`` (hits) and ``N`` (proximity)."""
        if isinstance(node, Term):
            tests = [f"{self._value(k)} in H" for k in self.keys(node)]
            return tests[0] if len(tests) == 1 else "(" + " or ".join(tests) + ")"
        if isinstance(node, And):
            return "(" + " and ".join(self.truth(c) for c in node.children) + ")"
        if isinstance(node, Or):
            return "(" + " or ".join(self.truth(c) for c in node.children) + ")"
        if isinstance(node, Not):
            return f"(not {self.truth(node.child)})"
        if isinstance(node, Count):
            keys = tuple(k for t in _side_terms(node.child) for k in self.keys(t))
            return f"(_count(H, {self._value(keys)}) >= {self._value(node.minimum)})"
        return f"({self._sides_present(node)} and N({self._value(self.near(node))}))"

    def _sides_present(self, node: Near) -> str:
        """An expression true when both sides of a NEAR occur at all: most articles stop here."""
        sides = []
        for side in (node.left, node.right):
            tests = [f"{self._value(k)} in H" for t in _side_terms(side) for k in self.keys(t)]
            sides.append(tests[0] if len(tests) == 1 else "(" + " or ".join(tests) + ")")
        return " and ".join(sides)

    def collect(self, node: Node, name: str, out: str, depth: int) -> list[str]:
        """Statements appending to list ``out`` the rows that support a true ``node``
        (none for NOT parts), setting ``t`` to 1, or 3 for a row in the title."""
        pad = "    " * depth
        if isinstance(node, Term):
            label = self._value(self.label(node))
            lines = []
            for k in self.keys(node):
                fi = k & _FIELD_MASK
                lines += [
                    f"{pad}o = H.get({self._value(k)})",
                    f"{pad}if o:",
                    f"{pad}    t {'= 3' if fi == _TITLE else '|= 1'}",
                    f"{pad}    for s, e in o:",
                    f"{pad}        {out}.append(({fi}, s, e, {name}, {label}, {self._value(_FIELD_NAMES[fi])}))",
                ]
            return lines
        if isinstance(node, And):
            return [line for c in node.children for line in self.collect(c, name, out, depth)]
        if isinstance(node, Or):
            lines = []
            for c in node.children:
                if _monotone(c):  # adds nothing unless it is true
                    lines += self.collect(c, name, out, depth)
                else:
                    test = self.truth(c)
                    inner = self.collect(c, name, out, depth + 1)
                    if inner:
                        lines += [f"{pad}if {test}:"] + inner
            return lines
        if isinstance(node, Not):
            return []
        if isinstance(node, Count):  # only collected once its truth is tested
            return [line for t in _side_terms(node.child) for line in self.collect(t, name, out, depth)]
        return [
            f"{pad}if {self._sides_present(node)}:",
            f"{pad}    for fi, s, e, label, field in N({self._value(self.near(node))}):",
            f"{pad}        t |= 3 if fi == {_TITLE} else 1",
            f"{pad}        {out}.append((fi, s, e, {name}, label, field))",
        ]

    def cover(self, node: Node) -> frozenset[int] | None:
        """Hit keys at least one of which must occur for ``node`` to be true (None: no such set).

        For AND (and NEAR, which needs both sides) the smallest cover of its
        children is taken: fewer index entries, fewer rules evaluated for nothing.
        """
        if isinstance(node, Term):
            return frozenset(self.keys(node))
        if isinstance(node, Not):
            return None
        if isinstance(node, Count):
            return self.cover(node.child)
        if isinstance(node, Or):
            out: set[int] = set()
            for c in node.children:
                cover = self.cover(c)
                if cover is None:
                    return None
                out |= cover
            return frozenset(out)
        children = node.children if isinstance(node, And) else (node.left, node.right)
        covers = [c for c in (self.cover(ch) for ch in children) if c is not None]
        if not covers:
            return None
        return min(covers, key=lambda c: (len(c), sorted(c)))


def _count(hits: _Hits, keys: tuple[int, ...]) -> int:
    """Distinct occurrences of any of these keys (two terms finding one span count once)."""
    found: set[tuple[int, int, int]] = set()
    for key in keys:
        spans = hits.get(key)
        if spans:
            fi = key & _FIELD_MASK
            found.update((fi, s, e) for s, e in spans)
    return len(found)


def _monotone(node: Node) -> bool:
    """True when ``node`` is true exactly when what `collect` gathers for it is not empty."""
    if isinstance(node, (Term, Near)):
        return True
    if isinstance(node, Or):
        return all(_monotone(c) for c in node.children)
    return False


def _side_terms(node: Node) -> list[Term]:
    """A NEAR operand's terms: the parser allows a term or an OR of terms."""
    if isinstance(node, Term):
        return [node]
    assert isinstance(node, Or) and all(isinstance(c, Term) for c in node.children)
    return [c for c in node.children if isinstance(c, Term)]


class _Proximity:
    """Per-article NEAR results, computed on first use and shared by every rule that asks."""

    __slots__ = ("hits", "texts", "specs", "cache", "sides")

    def __init__(self, hits: _Hits, texts: Sequence[_FieldText | None], specs: Sequence[_NearSpec]):
        self.hits = hits
        self.texts = texts
        self.specs = specs
        self.cache: dict[int, list[_Near]] = {}
        # One alias is often a side of many NEARs ("@openai NEAR/15 ..."): its occurrences, once.
        self.sides: dict[int, list[_Near]] = {}

    def _side(self, terms: tuple[tuple[str, tuple[int, ...]], ...]) -> list[_Near]:
        found = self.sides.get(id(terms))
        if found is None:
            hits = self.hits
            found = self.sides[id(terms)] = [
                (key & _FIELD_MASK, s, e, label, _FIELD_NAMES[key & _FIELD_MASK])
                for label, keys in terms
                for key in keys
                if key in hits
                for s, e in hits[key]
            ]
        return found

    def near(self, index: int) -> list[_Near]:
        """Occurrences of either side that have one of the other side within the distance.

        Two occurrences are within distance n when they do not overlap and
        the later one starts at most n words after the word where the
        earlier one ends. For each occurrence only the nearest occurrence of
        the other side before it and after it can decide that, so each side
        is sorted once and searched by bisection.
        """
        found = self.cache.get(index)
        if found is not None:
            return found
        left_terms, right_terms, distance = self.specs[index]
        found = []
        left = self._side(left_terms)
        right = self._side(right_terms) if left else []
        if right:
            for fi in sorted({o[0] for o in left} & {o[0] for o in right}):
                ft = self.texts[fi]
                assert ft is not None
                starts = ft.word_starts()
                ls = [o for o in left if o[0] == fi]
                rs = [o for o in right if o[0] == fi]
                found += _near_to(starts, ls, rs, distance)
                found += _near_to(starts, rs, ls, distance)
            found = list(dict.fromkeys(found))  # a term on both sides: each occurrence once
        self.cache[index] = found
        return found


def _near_to(starts: list[int], these: list[_Near], others: list[_Near], distance: int) -> list[_Near]:
    """The occurrences in ``these`` with one in ``others`` within ``distance`` words (one field)."""
    by_start = sorted(others, key=_start)
    by_end = sorted(others, key=_end)
    start_at = [o[1] for o in by_start]
    end_at = [o[2] for o in by_end]
    out = []
    for occ in these:
        s, e = occ[1], occ[2]
        # The other occurrence that starts first at or after this one's end...
        i = bisect_left(start_at, e)
        if i < len(start_at) and bisect_right(starts, start_at[i]) - bisect_right(starts, e - 1) <= distance:
            out.append(occ)
            continue
        # ...and the one that ends last at or before this one's start.
        j = bisect_right(end_at, s) - 1
        if j >= 0 and bisect_right(starts, s) - bisect_right(starts, end_at[j] - 1) <= distance:
            out.append(occ)
    return out


_start = itemgetter(1)
_end = itemgetter(2)


def _to_original(rows: list[_Row], texts: Sequence[_FieldText | None]) -> list[_Row]:
    """Rows with their spans in the text as given, in fields where normalising collapsed whitespace."""
    out = []
    for row in rows:
        ft = texts[row[0]]
        if ft is None or ft.collapsed is None:
            out.append(row)
            continue
        breaks, shifts = ft.collapsed
        s, e = row[1], row[2]
        s += shifts[bisect_right(breaks, s) - 1]
        e += shifts[bisect_right(breaks, e) - 1]
        out.append((row[0], s, e, row[3], row[4], row[5]))
    return out


def build_ruleset(
    rules: Sequence[Rule],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    title_weight: float = DEFAULT_TITLE_WEIGHT,
    aliases: Mapping[str, Sequence[str]] | None = None,
) -> RuleSet:
    """Compile rules built in code (tests, benchmarks) without a file."""
    return RuleSet(rules, threshold=threshold, title_weight=title_weight, aliases=aliases)
