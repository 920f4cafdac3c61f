"""Suggesting rule terms: words and phrases distinctive of a document.

Each of the document's words and 2-3 word phrases is scored

    score = count in the document x ln(1 / share of background articles using it)

(TF-IDF): a term the document repeats and ordinary news rarely uses ranks
first. The background is texts the caller passes in (the stored articles)
or, without them, the rough shares of `rules.background`, a list of common
news words written for this project. Pure: strings in, ranked suggestions
out. It only proposes; an analyst decides what becomes a rule.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rules.background import share as background_share
from rules.engine import Rule, RuleSet
from rules.measure import LabeledExample
from rules.query import QueryError, alias_term, all_terms, fold, parse_query

_WORD = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*|\$\d+(?:\.\d+)?")

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having he
    her here hers herself him himself his how i if in into is it its itself just like may me might more most must
    my myself no nor not now of off on once only or other our ours ourselves out over own same she should so some
    such than that the their theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your yours yourself yourselves
    new one two three s t said says say still yet even much many well back way ways also's it's here's what's
    while whether though although however since per via upon within without across around among like""".split()
)

@dataclass(frozen=True)
class Suggestion:
    """A candidate term: how it reads in the document, its weight, and how to write it in a query."""

    term: str
    score: float
    count: int
    query: str


def _tokens(text: str) -> list[str]:
    # A rule term "OpenAI" already matches "OpenAI's", so possessives are folded in.
    out = []
    for m in _WORD.finditer(text):
        word = m.group(0).replace("’", "'")
        if word.lower().endswith("'s") and len(word) > 2:
            word = word[:-2]
        out.append(word)
    return out


def _grams(tokens: Sequence[str], n_max: int = 3) -> list[tuple[str, ...]]:
    low = [t.lower() for t in tokens]
    out: list[tuple[str, ...]] = []
    for n in range(1, n_max + 1):
        for i in range(len(low) - n + 1):
            gram = tuple(low[i : i + n])
            if gram[0] in STOPWORDS or gram[-1] in STOPWORDS:
                continue
            if n == 1 and (len(gram[0]) < 3 or gram[0].isdigit()):
                continue
            out.append(gram)
    return out


def _query_form(gram: tuple[str, ...], spellings: Counter[str]) -> tuple[str, str]:
    shown = spellings.most_common(1)[0][0]
    if len(gram) > 1:
        return shown, f'"{shown}"'
    # Short all-capital words are acronyms whose lower-case twins are other words.
    if shown.isupper() and 2 <= len(shown) <= 5 and shown.isalpha():
        return shown, f"={shown}"
    return shown, shown


def suggest_terms(document: str, background: Sequence[str] | None = None, *, top: int = 20) -> list[Suggestion]:
    """The ``top`` words and phrases of ``document`` ranked by TF-IDF against ``background``.

    Phrases need to occur at least twice; a phrase's words are not listed
    again when the phrase itself ranks with the same count.
    """
    docs = list(background or ())
    df: Counter[tuple[str, ...]] = Counter()
    for doc in docs:
        df.update(set(_grams(_tokens(doc))))
    tokens = _tokens(document)
    tf = Counter(_grams(tokens))
    spellings: dict[tuple[str, ...], Counter[str]] = {}
    for n in range(1, 4):
        for i in range(len(tokens) - n + 1):
            gram = tuple(t.lower() for t in tokens[i : i + n])
            if gram in tf:
                spellings.setdefault(gram, Counter())[" ".join(tokens[i : i + n])] += 1
    n_docs = len(docs)
    scored: list[tuple[float, tuple[str, ...]]] = []
    for gram, count in tf.items():
        if len(gram) > 1 and count < 2:
            continue
        if docs:
            used = (1 + df[gram]) / (1 + n_docs)
        else:
            used = background_share(tuple(w for w in gram if w not in STOPWORDS))
        scored.append((count * math.log(1 / used), gram))
    scored.sort(key=lambda x: (-x[0], x[1]))
    out: list[Suggestion] = []
    taken: list[tuple[tuple[str, ...], int]] = []
    for score, gram in scored:
        count = tf[gram]
        if any(len(g) > len(gram) and c == count and _inside(gram, g) for g, c in taken):
            continue
        shown, query = _query_form(gram, spellings[gram])
        out.append(Suggestion(shown, round(score, 3), count, query))
        taken.append((gram, count))
        if len(out) >= top:
            break
    return out


def _inside(small: tuple[str, ...], big: tuple[str, ...]) -> bool:
    n = len(small)
    return any(big[i : i + n] == small for i in range(len(big) - n + 1))


@dataclass(frozen=True)
class Proposal:
    """A whole candidate rule and what adding it changes on labeled examples."""

    query: str
    term: str
    gained: int  # relevant examples it newly flags
    false: int  # irrelevant examples it newly flags


def propose_rules(
    ruleset: RuleSet,
    suggestions: Sequence[Suggestion],
    examples: Sequence[LabeledExample],
    *,
    anchor: str,
    distance: int = 15,
) -> list[Proposal]:
    """For each suggested term, the rule ``(anchor) NEAR/distance term`` measured on ``examples``.

    Each candidate is added alone to ``ruleset`` with the threshold as its
    weight (it flags by itself) and counted against the set without it:
    relevant examples newly flagged, irrelevant ones newly flagged. Best
    first (most gained, fewest false); candidates that change nothing are
    left out.
    """
    aliases = {name: [alias_term(e) for e in entries] for name, entries in ruleset.aliases.items()}
    before = [ruleset.evaluate(ex.fields()).flagged for ex in examples]
    out: list[Proposal] = []
    anchor_node = parse_query(anchor, aliases)
    anchor_keys = {t.key for t in all_terms(anchor_node)}
    for s in suggestions:
        if fold(s.term) in anchor_keys:
            continue
        query = f"({anchor}) NEAR/{distance} {s.query}"
        try:
            node = parse_query(query, aliases)
        except QueryError:
            continue
        rule = Rule(name="suggested", tags=("suggested",), query=query, weight=ruleset.threshold, node=node)
        trial = RuleSet([*ruleset.rules, rule], threshold=ruleset.threshold, title_weight=ruleset.title_weight,
                        aliases=ruleset.aliases)
        gained = false = 0
        for ex, was in zip(examples, before):
            if not was and trial.evaluate(ex.fields()).flagged:
                if ex.relevant:
                    gained += 1
                else:
                    false += 1
        if gained or false:
            out.append(Proposal(query, s.term, gained, false))
    out.sort(key=lambda p: (-(p.gained - p.false), p.false, p.query))
    return out
