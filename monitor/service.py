"""Application operations shared by the CLI, the scheduler and the web app: thin use cases.

Each opens the store, calls the pure parts and writes. This module runs a
poll round and housekeeping; the other jobs have their own modules:
status text (monitor.status), the digest (monitor.digest: select, render,
publish, and the use case monitor.digest.job), delivery routing
(monitor.delivery), backtests (monitor.backtest), alerts (monitor.alerts).
Their public names are re-exported here so callers keep one import.
Holds no stage logic: the stages are wired in pipeline.py only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta, timezone

from monitor.alerts import check_alerts
from monitor.backtest import Backtest, backtest, stored_fields, stored_tagging
from monitor.config import Config
from monitor.delivery import delivery_configured
from monitor.digest.job import (
    DigestResult,
    digest_day_for,
    due_digest_days,
    make_digest,
    retry_deliveries,
)
from monitor.digest.select import (
    day_items,
    day_trends,
    digest_items,
    feed_health,
    select_day,
    stories_of_day,
)
from monitor.fetch import Fetcher
from monitor.fulltext import FullTextSettings
from monitor.pipeline import FeedReport, ParserPool, Pipeline, PollSummary
from monitor.settings import fetch_settings, open_store, policy
from monitor.status import feed_status, next_runs, status_extras
from rules import RuleSet, load_rules
from storage import Feed, Store, iso

__all__ = [
    "Backtest", "DigestResult", "backtest", "check_alerts", "day_items", "delivery_configured", "digest_day_for",
    "digest_items", "due_digest_days", "feed_health", "feed_status", "fetch_settings", "build_pipeline", "housekeeping", "make_digest",
    "housekeeping_due", "next_runs", "open_store", "policy", "poll_once", "retry_deliveries", "select_day", "select_feeds",
    "status_extras", "stored_fields", "stored_tagging", "stories_of_day", "trends",
]

log = logging.getLogger("monitor")

Progress = Callable[[int], AbstractContextManager[Callable[[FeedReport], None]]]

# The old name of day_trends.
trends = day_trends


def select_feeds(store: Store, *, feed_urls: list[str], due_only: bool, now: datetime) -> list[Feed]:
    if feed_urls:
        return [store.get_feed(url) for url in feed_urls]
    if due_only:
        return store.feeds_due(now)
    return [f for f in store.list_feeds() if f.disabled is None]


def poll_once(
    config: Config,
    *,
    feed_urls: list[str] | None = None,
    due_only: bool = False,
    now: datetime,
    progress: Progress | None = None,
    ruleset: RuleSet | None = None,
    stop: threading.Event | None = None,
    parser_pool: ParserPool | None = None,
) -> PollSummary:
    """One poll round: the named feeds, the due ones, or every active feed.

    `progress(total)`, when given, is a context manager yielding the callback
    called as each feed completes (the CLI draws a progress bar with it).
    """
    ruleset = ruleset or load_rules(config.rule_files)
    with open_store(config, now=now) as store, Fetcher(fetch_settings(config)) as fetcher:
        feeds = select_feeds(store, feed_urls=feed_urls or [], due_only=due_only, now=now)
        pipeline = build_pipeline(config, store, fetcher, ruleset, parser_pool=parser_pool)
        if progress is not None and feeds:
            with progress(len(feeds)) as on_feed_done:
                return pipeline.poll(feeds, now=now, on_feed_done=on_feed_done, stop=stop)
        return pipeline.poll(feeds, now=now, on_feed_done=_log_feed, stop=stop)


def build_pipeline(
    config: Config, store: Store, fetcher: Fetcher, ruleset: RuleSet, *, parser_pool: ParserPool | None = None,
    processes: int | None = None,
) -> Pipeline:
    """The Pipeline as the config sets it up (in-process rounds and queue workers alike)."""
    return Pipeline(
        store,
        fetcher,
        ruleset,
        policy=policy(config),
        concurrency=config.concurrency,
        processes=processes,
        parser_pool=parser_pool,
        story_window=timedelta(days=config.story_window_days),
        full_text=FullTextSettings(min_chars=config.full_text_min_chars),
        stories=config.stories_enabled,
    )


def _log_feed(r: FeedReport) -> None:
    if r.status in ("ok", "not_modified"):
        log.info("%s: %s, %d new, %d updated, %d flagged", r.name, r.status.replace("_", " "), r.new, r.updated, r.flagged)


def housekeeping(config: Config, *, now: datetime) -> int:
    """Prune unflagged articles older than keep_days; keep the database in shape."""
    with open_store(config, now=now) as store:
        pruned = store.prune(before=now - timedelta(days=config.keep_days))
        # Days before today: one summary row per feed; beyond fetch_log_days: gone.
        today = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        folded, dropped = store.compact_fetch_log(
            fold_before=today, drop_before=now - timedelta(days=config.fetch_log_days)
        )
        log.info("housekeeping: fetch log: %d rows folded into daily summaries, %d older rows dropped", folded, dropped)
        store.set_meta("last_housekeeping", iso(now))
        store.maintain()
    return pruned


def housekeeping_due(config: Config, *, now: datetime) -> bool:
    """Whether a day has passed since the last housekeeping (for `monitor run --once` from cron)."""
    with open_store(config, now=now) as store:
        last = store.meta("last_housekeeping")
    return last is None or datetime.fromisoformat(last) <= now - timedelta(days=1)
