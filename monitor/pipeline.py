"""The one place that wires the stages: fetch -> parse -> clean -> tag -> store.

Feeds are fetched, parsed, cleaned and tagged in a bounded thread pool (the
fetcher also bounds requests per host); results are written by the calling
thread, one transaction per feed, as they complete. A failing feed is an
error value recorded on its row; it never stops the others.

Everything called from here is pure (parse, clean, rules, decide) or a thin
adapter (fetch, storage). No scheduling and no presentation here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime

from monitor.clean import to_article
from monitor.decide import Policy, decide
from monitor.fetch import Fetcher, FetchResult
from monitor.model import Article, MonitorError, StorageError, Tagging
from monitor.parse import parse_feed
from rules import RuleSet
from storage import Feed, FeedUpdate, Store

log = logging.getLogger("monitor.pipeline")


@dataclass
class FeedReport:
    url: str
    name: str
    status: str
    new: int = 0
    updated: int = 0
    linked: int = 0
    flagged: int = 0
    error: str | None = None
    warning: str | None = None


@dataclass
class PollSummary:
    feeds: list[FeedReport] = field(default_factory=list)
    interrupted: bool = False

    def count(self, *statuses: str) -> int:
        return sum(1 for f in self.feeds if f.status in statuses)

    @property
    def ok(self) -> int:
        return self.count("ok")

    @property
    def not_modified(self) -> int:
        return self.count("not_modified")

    @property
    def failed(self) -> int:
        return self.count("error", "paused", "gone", "throttled", "storage_error")

    @property
    def new(self) -> int:
        return sum(f.new for f in self.feeds)

    @property
    def flagged(self) -> int:
        return sum(f.flagged for f in self.feeds)

    def line(self) -> str:
        return (
            f"polled {len(self.feeds)} feeds: {self.ok} ok, {self.not_modified} not modified, "
            f"{self.failed} failed; {self.new} new articles, {self.flagged} flagged"
            + (" (interrupted)" if self.interrupted else "")
        )


@dataclass
class _Work:
    """What a worker hands back for the writer: nothing here has touched the database."""

    feed: Feed
    update: FeedUpdate
    items: list[tuple[Article, Tagging]]


def rule_fields(*, title: str, text: str, author: str, url: str, feed: str) -> dict[str, str]:
    """The fields rules see, named as rule queries scope them (`title:`, `text:`, ...)."""
    return {"title": title, "text": text, "author": author, "url": url, "feed": feed}


def tag_article(ruleset: RuleSet, article: Article, feed_name: str) -> Tagging:
    """Evaluate the rules on a freshly parsed article."""
    return ruleset.evaluate(
        rule_fields(title=article.title, text=article.text, author=article.author, url=article.url, feed=feed_name)
    )


class Pipeline:
    def __init__(
        self,
        store: Store,
        fetcher: Fetcher,
        ruleset: RuleSet,
        *,
        policy: Policy = Policy(),
        concurrency: int = 16,
    ):
        self.store = store
        self.fetcher = fetcher
        self.ruleset = ruleset
        self.policy = policy
        self.concurrency = concurrency

    def poll(
        self,
        feeds: Sequence[Feed],
        *,
        now: datetime,
        on_feed_done: Callable[[FeedReport], None] | None = None,
        stop: threading.Event | None = None,
    ) -> PollSummary:
        """Poll these feeds once. `stop` set mid-way: finish the feed being written, skip the rest."""
        summary = PollSummary()
        if not feeds:
            return summary
        ruleset = self.ruleset  # one rule set for the whole round, even if reloaded meanwhile
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(feeds)), thread_name_prefix="poll") as pool:
            pending: set[Future[_Work]] = {pool.submit(self._work, feed, ruleset, now) for feed in feeds}
            try:
                while pending:
                    if stop is not None and stop.is_set():
                        summary.interrupted = True
                        break
                    done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    for fut in done:
                        if stop is not None and stop.is_set():
                            summary.interrupted = True
                            break
                        report = self._write(fut.result(), now, ruleset.version)
                        summary.feeds.append(report)
                        if on_feed_done is not None:
                            on_feed_done(report)
                    if summary.interrupted:
                        break
            finally:
                for fut in pending:
                    fut.cancel()
        return summary

    def _work(self, feed: Feed, ruleset: RuleSet, now: datetime) -> _Work:
        try:
            return self._fetch_and_tag(feed, ruleset, now)
        except Exception as exc:
            # A bug on one publisher's odd feed must not stop every other
            # feed, every minute, for months: record it on that feed, keep
            # the traceback in the log, and go on.
            log.exception("internal error while polling %s", feed.url)
            return self._failed(feed, now, f"internal error: {type(exc).__name__}: {exc}")

    def _failed(
        self, feed: Feed, now: datetime, error: str, result: FetchResult | None = None, outcome: str = "error"
    ) -> _Work:
        d = decide(
            url=feed.url,
            outcome=outcome,
            previous_errors=feed.error_count,
            now=now,
            policy=self.policy,
            interval=feed.interval,
            retry_after=result.retry_after if result else None,
        )
        update = FeedUpdate(
            status=d.status,
            http_status=result.status if result else None,
            etag=feed.etag,
            last_modified=feed.last_modified,
            error=error,
            error_count=d.error_count,
            next_due=d.next_due,
            disabled=d.disabled,
            new_url=result.permanent_url if result else None,
            bytes=result.bytes_received if result else 0,
            elapsed=result.elapsed if result else 0.0,
        )
        return _Work(feed, update, [])

    def _fetch_and_tag(self, feed: Feed, ruleset: RuleSet, now: datetime) -> _Work:
        result = self.fetcher.fetch(feed.url, etag=feed.etag, last_modified=feed.last_modified, now=now)
        if result.gone:
            return self._failed(feed, now, result.error or "HTTP 410 Gone", result, outcome="gone")
        if result.retry_after is not None and result.status in (429, 503):
            return self._failed(feed, now, result.error or f"HTTP {result.status}", result, outcome="throttled")
        if result.error is not None:
            return self._failed(feed, now, result.error, result)

        def healthy(status: str) -> FeedUpdate:
            d = decide(
                url=feed.url, outcome=status, previous_errors=feed.error_count, now=now,
                policy=self.policy, interval=feed.interval,
            )
            return FeedUpdate(
                status=d.status,
                http_status=result.status,
                etag=result.etag or feed.etag,
                last_modified=result.last_modified or feed.last_modified,
                error_count=0,
                next_due=d.next_due,
                new_url=result.permanent_url,
                bytes=result.bytes_received,
                elapsed=result.elapsed,
            )

        if result.not_modified:
            return _Work(feed, healthy("not_modified"), [])
        try:
            parsed = parse_feed(result.body or b"", result.final_url, result.content_type)
        except MonitorError as exc:
            return self._failed(feed, now, str(exc), result)
        update = healthy("ok")
        update.warning = parsed.warning
        update.title = parsed.title or None
        update.site_url = parsed.link
        name = feed.name or parsed.title or feed.url
        items = []
        for raw in parsed.entries:
            article = to_article(raw, base_url=result.final_url, fetched_at=now)
            items.append((article, tag_article(ruleset, article, name)))
        return _Work(feed, update, items)

    def _write(self, work: _Work, now: datetime, rules_version: str) -> FeedReport:
        feed, update = work.feed, work.update
        name = feed.name or update.title or feed.title or feed.url
        try:
            stats = self.store.save_poll(feed, update, work.items, now=now, rules_version=rules_version)
        except StorageError as exc:
            # The transaction rolled back: the feed is exactly as before this poll.
            log.error("%s: not stored: %s", feed.url, exc)
            return FeedReport(feed.url, name, "storage_error", error=str(exc))
        report = FeedReport(
            url=feed.url,
            name=name,
            status=update.status,
            new=stats.new,
            updated=stats.updated,
            linked=stats.linked,
            flagged=stats.flagged,
            error=update.error,
            warning=update.warning,
        )
        if update.error:
            log.warning("%s: %s: %s", feed.url, update.status, update.error)
        elif update.warning:
            log.warning("%s: stored with a warning: %s", feed.url, update.warning)
        return report
