"""The backtest use case: re-evaluate stored articles with a rule set and compare, optionally apply."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.types import Tagging, combined_text
from monitor.config import Config
from monitor.pipeline import rule_fields
from monitor.settings import open_store
from rules import BacktestReport, RuleSet, compare


def stored_fields(row: dict[str, Any]) -> dict[str, str]:
    """The rule fields of a stored article, exactly as they were when it was tagged."""
    return rule_fields(
        title=row["title"],
        text=combined_text(row["summary_text"], row["content_text"], row.get("full_text", "")),
        author=row["author"],
        url=row["url"],
        feed=row["feed_name"],
    )


def stored_tagging(row: dict[str, Any]) -> Tagging:
    return Tagging(
        score=row["score"], flagged=row["flagged"], tags=list(row["tags"]), matches=list(row["matches"]),
        tag_scores=dict(row["tag_scores"]),
    )


@dataclass
class Backtest:
    report: BacktestReport
    titles: dict[int, tuple[str, str]]  # id -> (title, url), for the examples
    after: dict[int, Tagging]  # id -> new Tagging
    applied: int = 0


def backtest(
    config: Config, ruleset: RuleSet, *, since: datetime | None, now: datetime, apply: bool = False,
    published_since: datetime | None = None,
) -> Backtest:
    """Re-evaluate stored articles with `ruleset` and compare with how they are tagged now.

    With `apply`, store the new tagging of every article whose tagging
    changed, recording each tag added or removed.
    """
    before: dict[int, Tagging] = {}
    after: dict[int, Tagging] = {}
    titles: dict[int, tuple[str, str]] = {}
    with open_store(config, now=now) as store:
        for row in store.iter_articles(since=since, published_since=published_since):
            before[row["id"]] = stored_tagging(row)
            after[row["id"]] = ruleset.evaluate(stored_fields(row))
            titles[row["id"]] = (row["title"], row["link"] or row["url"])
        report = compare(before, after)
        result = Backtest(report, titles, after)
        if apply:
            for article_id, new in after.items():
                old = before[article_id]
                if (old.flagged, sorted(old.tags), old.matches, old.score) != (
                    new.flagged, sorted(new.tags), new.matches, new.score
                ):
                    store.retag(article_id, new, now=now, rules_version=ruleset.version)
                    result.applied += 1
    return result
