"""Compiled rule sets: one Aho-Corasick pass per field, then only the rules hit.

`RuleSet.evaluate` is the hot path of tagging. Every distinct term of every
rule goes into one automaton. Each field is normalised (typographic
apostrophes and hyphens folded, whitespace collapsed, case folded, all with
an offset map back to the text as given) and scanned once; the automaton
only yields hits that start and end on word boundaries (see `_Key`), which
are re-checked where a term holds punctuation and, for case-sensitive terms,
against their exact spelling. Each rule is indexed under a "cover" of terms
one of which must occur for it to be true, and only rules whose cover was
hit are evaluated, so the cost per article follows the number of hits, not
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
from dataclasses import dataclass
from typing import Any

import ahocorasick

from monitor.model import Match, Tagging
from rules.query import FIELDS, And, Node, Not, Or, Term, fold, render

DEFAULT_THRESHOLD = 2.0
DEFAULT_TITLE_WEIGHT = 1.5

# A "word" for NEAR distances: letters/digits joined by apostrophes or hyphens,
# so "OpenAI's" and "Microsoft-backed" are one word each.
_WORD = re.compile(r"\w+(?:['\-]\w+)*")


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


@dataclass(frozen=True)
class _Key:
    """What one automaton pattern stands for.

    The automaton scans a "word-space" copy of the folded text: a space in
    front, every non-word character turned into a space, a space at the end.
    A pattern is the term written the same way with a space in front (so it
    can only match at the start of a word) and, unless it is a prefix, a
    space behind (so it can only match at the end of one). Hits inside
    words, which dominate raw Aho-Corasick hits, are never produced.
    """

    length: int  # of the term in the folded text
    folded: str | None  # the folded term, re-checked when it holds non-word characters
    prefix: bool
    tids: tuple[tuple[int, str | None], ...]  # (term id, exact spelling of a case-sensitive term)


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


# The same 1:1 folding `rules.query.canonical` applies to patterns, plus every
# whitespace character to a plain space.
_TRANSLATE = str.maketrans(
    {
        "\u2019": "'",
        "\u2018": "'",
        "\u02bc": "'",
        "\u2010": "-",
        "\u2011": "-",
        **{chr(c): " " for c in range(0x3001) if chr(c).isspace() and c != 0x20},
    }
)
_SPACES = re.compile(r" {2,}")
# Non-word ASCII and Latin-1 characters; others are classified when first seen
# in a non-ASCII text (RuleSet._nonword_for).
_NONWORD_BASE: dict[int, str] = {c: " " for c in range(0x100) if not (chr(c).isalnum() or chr(c) == "_")}


def _normalise(text: str) -> _FieldText:
    """Map typographic variants and whitespace 1:1, then collapse runs of spaces
    (phrases are compiled with single spaces), keeping an offset map only when
    something was collapsed: clean single-spaced text costs one translate."""
    norm = text.translate(_TRANSLATE)
    if "  " not in norm:
        return _FieldText(text, norm, None)
    parts: list[str] = []
    offsets: list[int] = []
    last = 0
    for m in _SPACES.finditer(norm):
        parts.append(norm[last : m.start()])
        offsets.extend(range(last, m.start()))
        parts.append(" ")
        offsets.append(m.start())
        last = m.end()
    parts.append(norm[last:])
    offsets.extend(range(last, len(norm)))
    return _FieldText(text, "".join(parts), offsets)


# Compiled programs: (_T, slot) | (_A, children) | (_O, children) | (_N, child) | (_R, left, right, distance)
_T, _A, _O, _N, _R = range(5)
_Prog = tuple[Any, ...]
# A true rule's supporting occurrences: (term label, occurrence).
_Found = list[tuple[str, _Occ]]
_Slot = tuple[int, frozenset[str], str]  # term id, fields, label


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
        self._nonword: dict[int, str] = dict(_NONWORD_BASE)
        self._compile()
        self.version = self._version()

    # ------------------------------------------------------------ compile

    def _compile(self) -> None:
        # Terms that find the same occurrences share a term id; a term in
        # given fields is a "slot". Rules become small tuple programs over slots.
        tids: dict[tuple[str, str | None, bool], int] = {}
        terms: list[Term] = []
        self._slots: list[_Slot] = []
        slot_ids: dict[tuple[int, frozenset[str]], int] = {}

        def slot(term: Term) -> int:
            tid = tids.get(term.ident)
            if tid is None:
                tid = tids[term.ident] = len(terms)
                terms.append(term)
            sid = slot_ids.get((tid, term.fields))
            if sid is None:
                sid = slot_ids[(tid, term.fields)] = len(self._slots)
                self._slots.append((tid, term.fields, term.display()))
            return sid

        def compile_node(node: Node) -> _Prog:
            if isinstance(node, Term):
                return (_T, slot(node))
            if isinstance(node, And):
                return (_A, tuple(compile_node(c) for c in node.children))
            if isinstance(node, Or):
                return (_O, tuple(compile_node(c) for c in node.children))
            if isinstance(node, Not):
                return (_N, compile_node(node.child))
            return (_R, compile_node(node.left), compile_node(node.right), node.distance)

        self._programs: list[_Prog] = [compile_node(r.node) for r in self.rules]
        self._term_rules: list[list[int]] = [[] for _ in terms]
        for r_index, prog in enumerate(self._programs):
            cover = _cover(prog, self._slots)
            if not cover:  # parse_query refuses such rules; build_ruleset callers may not
                raise ValueError(f"rule {self.rules[r_index].name} can match without any term occurring")
            for tid in sorted(cover):
                self._term_rules[tid].append(r_index)

        by_key: dict[tuple[str, bool], list[tuple[int, str | None]]] = {}
        for tid, term in enumerate(terms):
            by_key.setdefault((term.key, term.prefix), []).append((tid, term.exact))
        self._automaton: ahocorasick.Automaton | None = None
        if not by_key:
            return
        automaton = ahocorasick.Automaton()
        for (key, prefix), entries in by_key.items():
            spaced = key.translate(self._nonword_for(key))
            # A term that starts with a non-word character ("$13") has its
            # left boundary built in; one that ends with one, its right.
            lead = 0 if spaced.startswith(" ") else 1
            pattern = " " * lead + spaced
            if not prefix and not pattern.endswith(" "):
                pattern += " "
            needs_check = any(not (c.isalnum() or c == "_") for c in key)
            info = (len(pattern) - lead, _Key(len(key), key if needs_check else None, prefix, tuple(entries)))
            # "gpt-4" and "gpt 4" share a pattern; the re-check tells them apart.
            existing = automaton.get(pattern, ())
            automaton.add_word(pattern, existing + (info,))
        automaton.make_automaton()
        self._automaton = automaton

    def _nonword_for(self, text: str) -> dict[int, str]:
        """The table turning non-word characters into spaces, grown for characters not seen before."""
        table = self._nonword
        if not text.isascii():
            for c in set(text):
                o = ord(c)
                if o not in table and not (c.isalnum() or c == "_"):
                    table[o] = " "
        return table

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
            spaced = " " + low.translate(self._nonword_for(low)) + " "
            for end, infos in automaton.iter(spaced):
                for back, key in infos:
                    # spaced[i] is low[i - 1]: the term starts `back` characters before the hit's end
                    start = end - back
                    stop = start + key.length
                    if key.folded is not None and (start < 0 or low[start:stop] != key.folded):
                        continue
                    if key.prefix:
                        while stop < n and (low[stop].isalnum() or low[stop] == "_"):
                            stop += 1
                    for tid, exact in key.tids:
                        if exact is not None and norm[start : start + key.length] != exact:
                            continue
                        found = hits.get(tid)
                        if found is None:
                            hits[tid] = [(name, start, stop)]
                        else:
                            found.append((name, start, stop))
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
        term_rules = self._term_rules
        for tid in hits:
            candidates.update(term_rules[tid])
        if not candidates:
            return Tagging()
        ctx = _Context(self._slots, hits, texts)
        score = 0.0
        tag_scores: dict[str, float] = {}
        matches: list[Match] = []
        for r_index in sorted(candidates):
            prog = self._programs[r_index]
            if not ctx.truth(prog):
                continue
            rule = self.rules[r_index]
            found: _Found = []
            ctx.collect(prog, found)
            weight = rule.weight
            if any(o[1][0] == "title" for o in found):
                weight *= self.title_weight
            score += weight
            for tag in rule.tags:
                tag_scores[tag] = tag_scores.get(tag, 0.0) + weight
            seen: set[tuple[str, _Occ]] = set()
            for item in found:
                if item in seen:
                    continue
                seen.add(item)
                label, (fname, s, e) = item
                ft = texts[fname]
                matches.append(Match(rule.name, label, fname, ft.to_original(s), ft.to_original(e)))
        if not matches:
            return Tagging()
        order = {f: i for i, f in enumerate(FIELDS)}
        matches.sort(key=lambda m: (order[m.field], m.start, m.end, m.rule))
        score = round(score, 6)
        return Tagging(
            score=score,
            flagged=score >= self.threshold,
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


def _cover(prog: _Prog, slots: Sequence[_Slot]) -> frozenset[int] | None:
    """Term ids at least one of which must occur for ``prog`` to be true (None: no such set).

    For AND (and NEAR, which needs both sides) the smallest cover of its
    children is taken: fewer index entries, fewer rules evaluated for nothing.
    """
    kind = prog[0]
    if kind == _T:
        return frozenset({slots[prog[1]][0]})
    if kind == _N:
        return None
    if kind == _O:
        out: set[int] = set()
        for c in prog[1]:
            cover = _cover(c, slots)
            if cover is None:
                return None
            out |= cover
        return frozenset(out)
    children = prog[1] if kind == _A else (prog[1], prog[2])
    covers = [c for c in (_cover(ch, slots) for ch in children) if c is not None]
    if not covers:
        return None
    return min(covers, key=lambda c: (len(c), sorted(c)))


class _Context:
    """Per-article evaluation state: occurrences per slot, computed on demand."""

    __slots__ = ("slots", "hits", "texts", "cache", "near_cache")

    def __init__(self, slots: Sequence[_Slot], hits: Mapping[int, list[_Occ]], texts: Mapping[str, _FieldText]):
        self.slots = slots
        self.hits = hits
        self.texts = texts
        self.cache: dict[int, _Found] = {}
        self.near_cache: dict[int, _Found] = {}

    def occurrences(self, sid: int) -> _Found:
        found = self.cache.get(sid)
        if found is None:
            tid, fields, label = self.slots[sid]
            occs = self.hits.get(tid)
            found = [(label, o) for o in occs if o[0] in fields] if occs else []
            self.cache[sid] = found
        return found

    def truth(self, prog: _Prog) -> bool:
        kind = prog[0]
        if kind == _T:
            return bool(self.occurrences(prog[1]))
        if kind == _A:
            return all(self.truth(c) for c in prog[1])
        if kind == _O:
            return any(self.truth(c) for c in prog[1])
        if kind == _N:
            return not self.truth(prog[1])
        return bool(self.near(prog))

    def collect(self, prog: _Prog, out: _Found) -> None:
        """Append the occurrences that support a true ``prog`` (nothing for NOT parts)."""
        kind = prog[0]
        if kind == _T:
            out.extend(self.occurrences(prog[1]))
        elif kind == _A:
            for c in prog[1]:
                self.collect(c, out)
        elif kind == _O:
            for c in prog[1]:
                if self.truth(c):
                    self.collect(c, out)
        elif kind == _R:
            out.extend(self.near(prog))

    def near(self, prog: _Prog) -> _Found:
        """Occurrences of either side that have one of the other side within the distance."""
        cached = self.near_cache.get(id(prog))
        if cached is not None:
            return cached
        left: _Found = []
        right: _Found = []
        self.collect(prog[1], left)
        self.collect(prog[2], right)
        distance = prog[3]
        out: _Found = []
        if left and right:
            kept: set[int] = set()
            for fname in {o[1][0] for o in left} & {o[1][0] for o in right}:
                starts = self.texts[fname].word_starts()
                ls = [(i, _span(starts, o)) for i, o in enumerate(left) if o[1][0] == fname]
                rs = [(j, _span(starts, o)) for j, o in enumerate(right) if o[1][0] == fname]
                for i, (lw0, lw1, lc0, lc1) in ls:
                    for j, (rw0, rw1, rc0, rc1) in rs:
                        if lc1 <= rc0:
                            gap = rw0 - lw1
                        elif rc1 <= lc0:
                            gap = lw0 - rw1
                        else:
                            continue  # the same text cannot be both operands
                        if gap <= distance:
                            if i not in kept:
                                kept.add(i)
                                out.append(left[i])
                            if -1 - j not in kept:
                                kept.add(-1 - j)
                                out.append(right[j])
        self.near_cache[id(prog)] = out
        return out


def _span(starts: list[int], found: tuple[str, _Occ]) -> tuple[int, int, int, int]:
    """Word indexes of an occurrence's first and last word, and its character span."""
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
