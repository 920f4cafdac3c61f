"""Compiled rule sets: one Aho-Corasick pass per field, then only the rules hit.

`RuleSet.evaluate` is the hot path of tagging. Every distinct term of every
rule goes into one automaton, keyed by its folded spelling. Scanning a field
yields raw hits; each is checked for word boundaries (and, for
case-sensitive terms, for its exact spelling) and recorded as an occurrence.
Only the rules that have one of their positive terms among the occurrences
are then evaluated, so the cost per article follows the number of hits, not
the number of rules.

This module does no I/O and imports nothing from the project but
`monitor.model`; rule files are read by `rules.load`.
"""

from __future__ import annotations

import hashlib
import json
import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import ahocorasick

from monitor.model import Match, Tagging
from rules.query import FIELDS, And, Near, Node, Not, Or, Term, canonical, fold, positive_terms, render

DEFAULT_THRESHOLD = 2.0
DEFAULT_TITLE_WEIGHT = 1.5

# A "word" for NEAR distances: letters/digits joined by apostrophes or hyphens,
# so "OpenAI's" and "Microsoft-backed" are one word each.
_WORD = re.compile(r"\w+(?:['\-]\w+)*")
# Any whitespace but a lone plain space makes us collapse runs (phrases are
# written with single spaces); the common case, clean single-spaced text, is left as is.
_SPACE_RUN = re.compile(r"\s{2,}|[^\S ]")


@dataclass(frozen=True)
class Rule:
    """One compiled rule, with where it was written (for error messages and `check`)."""

    name: str
    tags: tuple[str, ...]
    query: str
    weight: float
    node: Node
    source: str = ""
    file: str = ""
    line: int | None = None


@dataclass
class _Variant:
    """One term sharing an automaton key: how to accept a raw hit for it."""

    tid: int
    exact: str | None
    prefix: bool
    check_right: bool


# Occurrence: (field, start, end) in the field's normalised text.
_Occ = tuple[str, int, int]


@dataclass
class _FieldText:
    original: str
    norm: str
    # norm offset -> original offset, only when whitespace was collapsed
    offsets: list[int] | None
    _word_starts: list[int] | None = None

    def word_starts(self) -> list[int]:
        if self._word_starts is None:
            self._word_starts = [m.start() for m in _WORD.finditer(self.norm)]
        return self._word_starts

    def to_original(self, pos: int) -> int:
        if self.offsets is None:
            return pos
        if pos >= len(self.offsets):
            return len(self.original)
        return self.offsets[pos]


def _normalise(text: str) -> _FieldText:
    """Map typographic variants 1:1 and collapse whitespace runs, keeping an offset map."""
    if not _SPACE_RUN.search(text):
        return _FieldText(text, text.translate(_TRANSLATE), None)
    parts: list[str] = []
    offsets: list[int] = []
    last = 0
    for m in re.finditer(r"\s+", text):
        chunk = text[last : m.start()]
        parts.append(chunk)
        offsets.extend(range(last, m.start()))
        parts.append(" ")
        offsets.append(m.start())
        last = m.end()
    parts.append(text[last:])
    offsets.extend(range(last, len(text)))
    return _FieldText(text, "".join(parts).translate(_TRANSLATE), offsets)


# The same 1:1 folding `canonical` applies to patterns (whitespace handled above).
_TRANSLATE = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2010": "-", "\u2011": "-"})


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
    ):
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.threshold = float(threshold)
        self.title_weight = float(title_weight)
        self.aliases: dict[str, list[str]] = {k: list(v) for k, v in (aliases or {}).items()}
        self.files = tuple(files)
        self._compile()
        self.version = self._version()

    # ------------------------------------------------------------ compile

    def _compile(self) -> None:
        self._terms: list[Term] = []
        ids: dict[tuple[str, str | None, bool], int] = {}
        self._term_rules: list[list[int]] = []
        self._needs_words = False
        for r_index, rule in enumerate(self.rules):
            for term in positive_terms(rule.node):
                tid = ids.get(term.ident)
                if tid is None:
                    tid = ids[term.ident] = len(self._terms)
                    self._terms.append(term)
                    self._term_rules.append([])
                if not self._term_rules[tid] or self._term_rules[tid][-1] != r_index:
                    self._term_rules[tid].append(r_index)
            # Terms only under NOT still need to be found.
            self._collect_negative(rule.node, ids)
        self._tid = ids
        by_key: dict[str, list[_Variant]] = {}
        for tid, term in enumerate(self._terms):
            by_key.setdefault(term.key, []).append(
                _Variant(tid, term.exact, term.prefix, _is_word(term.key[-1]))
            )
        self._automaton: ahocorasick.Automaton | None = None
        if by_key:
            automaton = ahocorasick.Automaton()
            for key, variants in by_key.items():
                automaton.add_word(key, (len(key), _is_word(key[0]), tuple(variants)))
            automaton.make_automaton()
            self._automaton = automaton

    def _collect_negative(self, node: Node, ids: dict[tuple[str, str | None, bool], int]) -> None:
        if isinstance(node, Term):
            if node.ident not in ids:
                ids[node.ident] = len(self._terms)
                self._terms.append(node)
                self._term_rules.append([])
        elif isinstance(node, (And, Or)):
            for c in node.children:
                self._collect_negative(c, ids)
        elif isinstance(node, Not):
            self._collect_negative(node.child, ids)
        else:
            self._collect_negative(node.left, ids)
            self._collect_negative(node.right, ids)

    def _version(self) -> str:
        payload = {
            "threshold": self.threshold,
            "title_weight": self.title_weight,
            "rules": [[r.name, list(r.tags), r.weight, render(r.node)] for r in self.rules],
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()[:12]

    # ------------------------------------------------------------ match

    def _scan(self, fields: Mapping[str, str | None]) -> tuple[dict[int, list[_Occ]], dict[str, _FieldText]]:
        hits: dict[int, list[_Occ]] = {}
        texts: dict[str, _FieldText] = {}
        automaton = self._automaton
        if automaton is None:
            return hits, texts
        for name in FIELDS:
            raw = fields.get(name)
            if not raw:
                continue
            ft = _normalise(raw)
            texts[name] = ft
            norm = ft.norm
            low = fold(norm)
            n = len(low)
            for end, (klen, check_left, variants) in automaton.iter(low):
                start = end - klen + 1
                if check_left and start > 0:
                    c = low[start - 1]
                    if c.isalnum() or c == "_":
                        continue
                after = end + 1
                right_is_word = after < n and (low[after].isalnum() or low[after] == "_")
                for v in variants:
                    stop = after
                    if v.prefix:
                        while stop < n and (low[stop].isalnum() or low[stop] == "_"):
                            stop += 1
                    elif v.check_right and right_is_word:
                        continue
                    if v.exact is not None and norm[start:after] != v.exact:
                        continue
                    hits.setdefault(v.tid, []).append((name, start, stop))
        return hits, texts

    def evaluate(self, fields: Mapping[str, str | None]) -> Tagging:
        """Score one article's fields (`title`, `text`, `author`, `url`, `feed`).

        Missing or empty fields are simply not searched. Returns the score,
        whether it reaches the threshold, the union of the matching rules'
        tags, per-tag weights, and every occurrence that made a rule match.
        """
        hits, texts = self._scan(fields)
        if not hits:
            return Tagging()
        candidates: set[int] = set()
        for tid in hits:
            candidates.update(self._term_rules[tid])
        ctx = _Context(self._tid, hits, texts)
        score = 0.0
        tag_scores: dict[str, float] = {}
        matches: list[Match] = []
        for r_index in sorted(candidates):
            rule = self.rules[r_index]
            occs = ctx.eval(rule.node)
            if occs is None:
                continue
            weight = rule.weight
            if any(o[1][0] == "title" for o in occs):
                weight *= self.title_weight
            score += weight
            for tag in rule.tags:
                tag_scores[tag] = tag_scores.get(tag, 0.0) + weight
            seen: set[tuple[str, str, int, int]] = set()
            for term, (fname, s, e) in occs:
                ft = texts[fname]
                key = (term, fname, s, e)
                if key in seen:
                    continue
                seen.add(key)
                matches.append(Match(rule.name, term, fname, ft.to_original(s), ft.to_original(e)))
        order = {f: i for i, f in enumerate(FIELDS)}
        matches.sort(key=lambda m: (order[m.field], m.start, m.end, m.rule))
        score = round(score, 6)
        return Tagging(
            score=score,
            flagged=bool(matches) and score >= self.threshold,
            tags=sorted(tag_scores),
            matches=matches,
            tag_scores={k: round(v, 6) for k, v in tag_scores.items()},
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


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_"


# A rule's evaluation yields the occurrences that support it, or None when it is false.
_Found = list[tuple[str, _Occ]]


@dataclass
class _Context:
    tid: Mapping[tuple[str, str | None, bool], int]
    hits: Mapping[int, list[_Occ]]
    texts: Mapping[str, _FieldText]
    _cache: dict[Term, _Found] = field(default_factory=dict)

    def occurrences(self, term: Term) -> _Found:
        found = self._cache.get(term)
        if found is None:
            label = term.display()
            tid = self.tid[term.ident]
            found = [(label, o) for o in self.hits.get(tid, ()) if o[0] in term.fields]
            self._cache[term] = found
        return found

    def eval(self, node: Node) -> _Found | None:
        if isinstance(node, Term):
            found = self.occurrences(node)
            return found or None
        if isinstance(node, And):
            out: _Found = []
            for c in node.children:
                got = self.eval(c)
                if got is None:
                    return None
                out.extend(got)
            return out
        if isinstance(node, Or):
            any_true = False
            out = []
            for c in node.children:
                got = self.eval(c)
                if got is not None:
                    any_true = True
                    out.extend(got)
            return out if any_true else None
        if isinstance(node, Not):
            return [] if self.eval(node.child) is None else None
        return self.near(node)

    def near(self, node: Near) -> _Found | None:
        left = self.eval(node.left) or []
        right = self.eval(node.right) or []
        if not left or not right:
            return None
        out: list[tuple[str, _Occ]] = []
        kept: set[int] = set()
        for fname in {o[1][0] for o in left} & {o[1][0] for o in right}:
            starts = self.texts[fname].word_starts()
            ls = [(i, self._span(starts, o)) for i, o in enumerate(left) if o[1][0] == fname]
            rs = [(j, self._span(starts, o)) for j, o in enumerate(right) if o[1][0] == fname]
            for i, (lw0, lw1, lc0, lc1) in ls:
                for j, (rw0, rw1, rc0, rc1) in rs:
                    if lc1 <= rc0:
                        gap = rw0 - lw1
                    elif rc1 <= lc0:
                        gap = lw0 - rw1
                    else:
                        continue  # the same text cannot be both operands
                    if gap <= node.distance:
                        if i not in kept:
                            kept.add(i)
                            out.append(left[i])
                        if -1 - j not in kept:
                            kept.add(-1 - j)
                            out.append(right[j])
        return out or None

    @staticmethod
    def _span(starts: list[int], found: tuple[str, _Occ]) -> tuple[int, int, int, int]:
        _, (_, s, e) = found
        return bisect_right(starts, s) - 1, bisect_right(starts, e - 1) - 1, s, e


def build_ruleset(
    rules: Sequence[Rule],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    title_weight: float = DEFAULT_TITLE_WEIGHT,
    aliases: Mapping[str, Sequence[str]] | None = None,
) -> RuleSet:
    """Compile rules built in code (tests, benchmarks) without a file."""
    return RuleSet(rules, threshold=threshold, title_weight=title_weight, aliases=aliases)


__all__ = ["Rule", "RuleSet", "build_ruleset", "canonical", "DEFAULT_THRESHOLD", "DEFAULT_TITLE_WEIGHT"]
