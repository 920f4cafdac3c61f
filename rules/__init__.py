"""Keyword rules: a small boolean query language, compiled and matched in one pass.

Text in, matches out. This package imports nothing from the project but
`core` (no pipeline, scheduler, CLI or storage); see docs/rules.md
for the query language.
"""

from rules.backtest import BacktestReport, compare
from rules.engine import Rule, RuleSet, build_ruleset
from rules.explain import format_tagging, highlight, snippets
from rules.load import default_rule_files, load_rules
from rules.measure import EvalReport, evaluate_labels, read_labels
from rules.query import QueryError, parse_query
from rules.suggest import Proposal, Suggestion, propose_rules, suggest_terms

__all__ = [
    "BacktestReport",
    "EvalReport",
    "QueryError",
    "Rule",
    "RuleSet",
    "Proposal",
    "Suggestion",
    "build_ruleset",
    "compare",
    "default_rule_files",
    "evaluate_labels",
    "format_tagging",
    "highlight",
    "load_rules",
    "parse_query",
    "propose_rules",
    "read_labels",
    "snippets",
    "suggest_terms",
]
