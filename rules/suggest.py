"""Suggesting rule terms: words and phrases distinctive of a document.

TF-IDF of the document's words and 2-3 word phrases against a background:
texts the caller passes in (e.g. stored articles) or, without them, a small
built-in background of everyday news sentences written for this project.
Pure: strings in, ranked suggestions out. It only proposes; an analyst
decides what becomes a rule.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

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

# Everyday news of all kinds, written for this project, so that words common
# in any news (company, market, year, billion) rank below the ones that make
# a document distinctive.
BACKGROUND: tuple[str, ...] = (
    "The city council approved a new budget on Tuesday after a long debate about road repairs and school funding.",
    "Shares of the retailer fell in early trading after the company cut its forecast for the holiday quarter.",
    "The central bank kept interest rates unchanged and said inflation was cooling more slowly than expected.",
    "A storm brought heavy rain and strong winds to the coast, and thousands of homes lost power overnight.",
    "The home team won the final match of the season with a late goal in front of a sold-out stadium.",
    "Researchers reported that a new drug slowed the progress of the disease in a small clinical trial.",
    "The automaker said it would build a new factory and hire two thousand workers over the next three years.",
    "Lawmakers introduced a bill that would require companies to disclose more about how they collect user data.",
    "The startup raised money from venture investors and plans to expand into Europe next year.",
    "The software company released an update that fixes security flaws and adds new features for users.",
    "Analysts expect the chip maker to report higher revenue as demand for its products remains strong.",
    "The airline cancelled hundreds of flights because of a staffing shortage and bad weather at its main hub.",
    "A court ruled that the government had acted within its powers when it changed the regulation last year.",
    "The company announced that its chief executive would step down at the end of the month after ten years.",
    "Oil prices rose for a third day as traders worried about supply and a drop in inventories.",
    "The museum opened an exhibition of early photography that draws on private collections from several countries.",
    "Scientists found that the ice sheet is melting faster than models predicted a decade ago.",
    "The telecom operator said its network outage was caused by a faulty update and has been fixed.",
    "The streaming service raised its monthly price and said subscriber growth slowed in the last quarter.",
    "The health ministry launched a campaign to encourage people to get vaccinated before winter.",
    "The bank agreed to pay a fine to settle claims that it misled customers about fees on their accounts.",
    "The tech giant unveiled a new phone with a faster processor, a better camera and longer battery life.",
    "Investors are watching the market closely as the quarterly earnings season begins next week.",
    "The regulator opened an investigation into whether the merger would reduce competition in the industry.",
    "The university received a large gift to fund research on renewable energy and battery storage.",
    "The election results were delayed after officials found problems with some of the voting machines.",
    "The company said the acquisition would help it reach more customers and cut costs over time.",
    "Police said the road will stay closed for several days while crews repair the damaged bridge.",
    "The game developer delayed its next release to give the team more time to polish the story.",
    "The report found that small businesses are struggling with higher rents and rising wages.",
    "The group signed a partnership with a local supplier to source ingredients closer to home.",
    "The online retailer said it would open more warehouses to speed up deliveries to rural areas.",
    "The social network changed its rules on political ads ahead of the national vote.",
    "Engineers tested the new rocket engine for several minutes without any problems.",
    "The firm filed for a public listing and hopes to raise money from investors later this year.",
    "A lawsuit accuses the manufacturer of selling products that did not meet safety standards.",
    "The cloud provider said customers in one region saw slow service for several hours on Monday.",
    "Executives told employees in a memo that the company would invest billions in new technology.",
    "The nonprofit organisation runs programs that help young people find work in their communities.",
    "The board voted to approve the deal, which still needs approval from shareholders and regulators.",
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
    docs = list(background) if background else list(BACKGROUND)
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
        idf = math.log((1 + n_docs) / (1 + df[gram])) + 1.0
        # Longer phrases are rarer by nature; a mild boost keeps them competitive.
        scored.append((count * idf * (1 + 0.25 * (len(gram) - 1)), gram))
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
