"""The query language, operator by operator, with the near misses that must not match."""

from __future__ import annotations

import pytest

from rules import QueryError, parse_query
from rules_helpers import run

# (query, fields, expected) — each operator beside the texts it must refuse.
CASES: list[tuple[str, dict[str, str], bool]] = [
    # words: case-insensitive, whole words, possessives and hyphen joins count
    ("OpenAI", {"text": "openai shipped a model"}, True),
    ("OpenAI", {"text": "OpenAI's new model"}, True),
    ("OpenAI", {"text": "OpenAI\u2019s new model"}, True),
    ("OpenAI", {"text": "the Microsoft-OpenAI deal"}, True),
    ("OpenAI", {"text": "(OpenAI)"}, True),
    ("OpenAI", {"text": "OpenAIs"}, False),
    ("OpenAI", {"text": "notOpenAI"}, False),
    ("OpenAI", {"text": "open ai"}, False),
    ("Azure", {"text": "AzureML studio"}, False),
    ("café", {"text": "Le Café ouvre"}, True),
    ("café", {"text": "cafés"}, False),
    ("GPT-4", {"text": "the GPT-4 model"}, True),
    ("GPT-4", {"text": "the GPT-40 model"}, False),
    # punctuation inside and around terms
    ('"$13 billion"', {"text": "a $13 billion stake"}, True),
    ('"$13 billion"', {"text": "a 13 billion stake"}, False),
    ('"$13 billion"', {"text": "US$13 billion"}, True),
    ("AT&T", {"text": "AT&T and others"}, True),
    ("AT&T", {"text": "AT T and others"}, False),
    ('"GPT 4"', {"text": "GPT-4"}, True),  # a hyphen and a space are the same between words
    ('"GPT 4"', {"text": "GPT/4"}, False),  # other punctuation is not
    ("OpenAI", {"text": "«OpenAI»"}, True),
    ("OpenAI", {"text": "🚀OpenAI"}, True),
    ("OpenAI", {"text": "「OpenAI」"}, True),
    ("OpenAI", {"text": "éOpenAI"}, False),
    ("OpenAI", {"text": "OpenAI"}, True),
    ("openai_news", {"text": "openai_news"}, True),
    ("openai", {"text": "openai_news"}, False),
    # phrases: consecutive words, any whitespace between them
    ('"public benefit corporation"', {"text": "a public benefit corporation"}, True),
    ('"public benefit corporation"', {"text": "a public\n  benefit\tcorporation"}, True),
    ('"public benefit corporation"', {"text": "a public\u00a0benefit corporation"}, True),
    ('"public benefit corporation"', {"text": "a public-benefit corporation"}, True),
    ('"public benefit corporation"', {"text": "a publicbenefit corporation"}, False),  # only 2-word phrases join
    ('"public benefit corporation"', {"text": "public benefit corporations"}, False),
    ('"public benefit corporation"', {"text": "benefit corporation that is public"}, False),
    # case-sensitive terms
    ("=IPO", {"text": "an IPO next year"}, True),
    ("=IPO", {"text": "IPO-bound startup"}, True),
    ("=IPO", {"text": "see /news/openai-ipo-plans"}, False),
    ("=IPO", {"text": "Ipo is a surname"}, False),
    ('="Open AI"', {"text": "Open AI said"}, True),
    ('="Open AI"', {"text": "an open AI ecosystem"}, False),
    ("IPO", {"text": "see /news/openai-ipo-plans"}, True),
    # prefix wildcard
    ("renegotiat*", {"text": "they are renegotiating"}, True),
    ("renegotiat*", {"text": "a renegotiation"}, True),
    ("renegotiat*", {"text": "Renegotiated terms"}, True),
    ("renegotiat*", {"text": "negotiating"}, False),
    ("renegotiat*", {"text": "prerenegotiation"}, False),
    ('"Microsoft renegotiat*"', {"text": "Microsoft renegotiates"}, True),
    ('"Microsoft renegotiat*"', {"text": "Microsoft will renegotiate"}, False),
    # AND, implicit AND
    ("Microsoft AND OpenAI", {"text": "Microsoft backs OpenAI"}, True),
    ("Microsoft AND OpenAI", {"text": "Microsoft backs Anthropic"}, False),
    ("Microsoft OpenAI", {"text": "OpenAI and Microsoft"}, True),
    ("Microsoft OpenAI", {"text": "only Microsoft here"}, False),
    ("Microsoft AND OpenAI", {"title": "Microsoft", "text": "OpenAI"}, True),
    # OR
    ("Oracle OR CoreWeave", {"text": "a CoreWeave contract"}, True),
    ("Oracle OR CoreWeave", {"text": "an Amazon contract"}, False),
    # NOT is AND NOT
    ("Copilot NOT GitHub", {"text": "Microsoft Copilot usage"}, True),
    ("Copilot NOT GitHub", {"text": "GitHub Copilot usage"}, False),
    ("Copilot AND NOT GitHub", {"text": "GitHub Copilot usage"}, False),
    ("Copilot NOT title:GitHub", {"title": "Copilot news", "text": "GitHub Copilot"}, True),
    ("Copilot NOT title:GitHub", {"title": "GitHub Copilot news", "text": "x"}, False),
    # precedence: NOT binds tighter than AND, AND tighter than OR
    ("a OR b AND c", {"text": "a"}, True),
    ("a OR b AND c", {"text": "b"}, False),
    ("(a OR b) AND c", {"text": "a"}, False),
    ("(a OR b) AND c", {"text": "b c"}, True),
    ("a NOT b OR c", {"text": "c b"}, True),
    ("a NOT b OR c", {"text": "a b"}, False),
    # NEAR/n: at most n-1 words in between, either order, same field
    ("Microsoft NEAR/2 OpenAI", {"text": "Microsoft and OpenAI"}, True),
    ("Microsoft NEAR/2 OpenAI", {"text": "OpenAI and Microsoft"}, True),
    ("Microsoft NEAR/2 OpenAI", {"text": "Microsoft, Google and OpenAI"}, False),
    ("Microsoft NEAR/1 OpenAI", {"text": "Microsoft OpenAI"}, True),
    ("Microsoft NEAR/1 OpenAI", {"text": "Microsoft-OpenAI pact"}, True),
    ("Microsoft NEAR/1 OpenAI", {"text": "Microsoft's OpenAI stake"}, True),
    ("Microsoft NEAR/1 OpenAI", {"text": "Microsoft and OpenAI"}, False),
    ("Microsoft NEAR/5 OpenAI", {"title": "Microsoft", "text": "OpenAI"}, False),
    ("Microsoft NEAR/3 OpenAI", {"text": "Microsoft " + "x " * 10 + "OpenAI and then Microsoft"}, True),
    ('Microsoft NEAR/3 "public benefit corporation"', {"text": "Microsoft backs the public benefit corporation"}, True),
    ('Microsoft NEAR/3 "public benefit corporation"', {"text": "the public benefit corporation that Microsoft backs"}, True),
    ('Microsoft NEAR/3 "public benefit corporation"', {"text": "Microsoft one two three public benefit corporation"}, False),
    ("@openai NEAR/3 (=IPO OR listing)", {"text": "ChatGPT maker weighs IPO"}, True),
    ("@openai NEAR/3 (=IPO OR listing)", {"text": "Sam Altman plans a listing"}, True),
    ("@openai NEAR/3 (=IPO OR listing)", {"text": "ChatGPT maker skips, unlike Reddit, its IPO"}, False),
    ("OpenAI NEAR/5 OpenAI", {"text": "OpenAI said"}, False),
    ("OpenAI NEAR/5 OpenAI", {"text": "OpenAI said OpenAI"}, True),
    # field scope on a term, phrase, alias and group
    ("title:IPO", {"title": "An IPO", "text": "x"}, True),
    ("title:IPO", {"title": "x", "text": "An IPO"}, False),
    ('text:"going public"', {"text": "going public soon"}, True),
    ('text:"going public"', {"title": "going public soon"}, False),
    ("url:ipo", {"url": "https://example.com/openai-ipo"}, True),
    ("ipo", {"url": "https://example.com/openai-ipo"}, False),
    ("author:Smith", {"author": "Jane Smith"}, True),
    ("author:Smith", {"text": "Jane Smith"}, False),
    ("feed:Verge", {"feed": "The Verge"}, True),
    ("title:@openai", {"title": "Sam Altman speaks"}, True),
    ("title:@openai", {"text": "Sam Altman speaks"}, False),
    ("title:(Microsoft OR MSFT) AND OpenAI", {"title": "MSFT up", "text": "OpenAI"}, True),
    ("title:(Microsoft OR MSFT) AND OpenAI", {"title": "up", "text": "MSFT OpenAI"}, False),
    # aliases (entries keep their own case-sensitivity)
    ("@ms", {"text": "MSFT shares rose"}, True),
    ("@ms", {"text": "msft shares rose"}, False),
    ("@openai", {"text": "sam altman said"}, True),
]


@pytest.mark.parametrize(("query", "fields", "expected"), CASES)
def test_operator(query: str, fields: dict[str, str], expected: bool) -> None:
    assert run(query, **fields).flagged is expected


ERRORS: list[tuple[str, str, int]] = [
    ("(Microsoft AND OpenAI", "unbalanced parenthesis: '(' is never closed", 1),
    ("Microsoft AND OpenAI)", "unbalanced parenthesis: ')' has no matching '('", 21),
    ("@opnai AND IPO", "unknown alias @opnai", 1),
    ("titel:IPO", "unknown field titel:", 1),
    ("IPO AND", "query ends where a term was expected", 8),
    ("OR IPO", "OR has nothing on its left", 1),
    ("NEAR/3 IPO", "NEAR/n has nothing on its left", 1),
    ('"going public', "unterminated quote", 1),
    ('""', "empty phrase", 1),
    ("a NEAR b", "is not a proximity operator", 3),
    ("a NEAR/0 b", "at least 1", 3),
    ("a NEAR/3 b NEAR/3 c", "NEAR cannot be chained", 12),
    ("a NEAR/3 (b AND c)", "NEAR operands must be", 10),
    ("NOT Azure", "matches only by what is absent", 1),
    ("a OR NOT b", "matches only by what is absent", 1),
    ("re*negotiate", "only allowed at the end", 1),
    ("ai*", "too short", 1),
    ("()", "empty parentheses", 1),
    ("title:(text:IPO)", "can never match", 8),
    ("title: IPO", "without a space", 1),
    ("", "empty query", 1),
    ("= IPO", "'=' must be followed", 1),
    ("!!!", "no letters or digits", 1),
    # 33 nested groups: refused with a clear error, not a RecursionError traceback
    ("(" * 33 + "IPO" + ")" * 33, "nested too deeply", 33),
    ("NOT " * 33 + "IPO AND OpenAI", "nested too deeply", 129),
]


@pytest.mark.parametrize(("query", "message", "column"), ERRORS)
def test_query_errors(query: str, message: str, column: int) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(query, {})
    assert message in info.value.message
    assert info.value.column == column


def test_nesting_up_to_the_limit_parses_and_matches() -> None:
    query = "(" * 32 + "IPO" + ")" * 32
    assert run(query, text="an IPO").flagged
    assert not run(query, text="an IPA").flagged


def test_a_thousand_parentheses_are_one_query_error_not_a_crash() -> None:
    with pytest.raises(QueryError, match="nested too deeply"):
        parse_query("(" * 1000 + "IPO" + ")" * 1000, {})


def test_lowercase_operators_are_plain_words_with_a_warning() -> None:
    warnings: list[tuple[str, int]] = []
    parse_query("Microsoft and OpenAI", {}, warnings)
    assert warnings and warnings[0][1] == 11 and "write AND" in warnings[0][0]
    # Analysts' tools use upper-case operators; "and" in a phrase-less query is a word.
    assert run("Microsoft and OpenAI", text="Microsoft and OpenAI").flagged
    assert not run("Microsoft and OpenAI", text="Microsoft with OpenAI").flagged
