"""Helpers shared by the rules tests: compile a query or a rule file text."""

from __future__ import annotations

from pathlib import Path

from core.types import Tagging
from rules import Rule, RuleSet, build_ruleset, parse_query
from rules.query import alias_term

ALIASES = {
    "openai": ["OpenAI", "ChatGPT", "Sam Altman"],
    "ms": ["Microsoft", "=MSFT"],
}


def one_rule(query: str, aliases: dict[str, list[str]] | None = None, *, weight: float = 1.0) -> RuleSet:
    names = aliases if aliases is not None else ALIASES
    terms = {k: [alias_term(e) for e in v] for k, v in names.items()}
    node = parse_query(query, terms)
    rule = Rule(name="r", tags=("t",), query=query, weight=weight, node=node)
    return build_ruleset([rule], threshold=weight, aliases=names)


def run(query: str, **fields: str) -> Tagging:
    return one_rule(query).evaluate(fields)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path
