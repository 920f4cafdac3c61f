"""The one place that wires the stages: fetch -> parse -> clean -> tag -> store.

Feeds are fetched in a bounded thread pool (the fetcher also bounds
requests per host). Parsing, cleaning and tagging are pure Python and hold
the GIL, so on a big round they run in worker processes, one per core; on a
small round (or with processes=0) they run in the fetching thread. Results
are written by the calling thread as they complete: the feeds finished
meanwhile in one transaction (at most MAX_BATCH), each feed a savepoint. A failing feed is an error value recorded on its row; it never
stops the others.

Everything called from here is pure (parse, clean, rules, decide) or a thin
adapter (fetch, storage). No scheduling and no presentation here.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.errors import MonitorError, StorageError
from core.types import Article, StoryKey, Tagging, content_hash
from monitor.clean import date_out_of_range, to_article
from monitor.decide import Policy, decide
from monitor.fetch import Fetcher, FetchResult
from monitor.ingest import save_poll
from monitor.parse import parse_feed
from monitor.stories import DEFAULT_WINDOW, story_key
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
    story_keys: list[StoryKey] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)


def rule_fields(*, title: str, text: str, author: str, url: str, feed: str) -> dict[str, str]:
    """The fields rules see, named as rule queries scope them (`title:`, `text:`, ...)."""
    return {"title": title, "text": text, "author": author, "url": url, "feed": feed}


def tag_article(ruleset: RuleSet, article: Article, feed_name: str) -> Tagging:
    """Evaluate the rules on a freshly parsed article."""
    return ruleset.evaluate(
        rule_fields(title=article.title, text=article.text, author=article.author, url=article.url, feed=feed_name)
    )


@dataclass
class _Parsed:
    """What the CPU stage hands back: feed metadata and tagged articles, or the reason it is not a feed."""

    error: str | None = None
    title: str | None = None
    link: str | None = None
    warning: str | None = None
    items: list[tuple[Article, Tagging]] = field(default_factory=list)
    story_keys: list[StoryKey] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)  # content hashes, one per item: made here, not in the writer


def parse_clean_tag(
    ruleset: RuleSet,
    body: bytes,
    base_url: str,
    content_type: str | None,
    feed_name: str | None,
    now: datetime,
    stories: bool = True,
) -> _Parsed:
    """Bytes to tagged articles: the pure middle of the pipeline (runs in a thread or a worker process)."""
    try:
        parsed = parse_feed(body, base_url, content_type)
    except MonitorError as exc:
        return _Parsed(error=str(exc))
    name = feed_name or parsed.title or base_url
    items, keys, hashes = [], [], []
    bad_dates = 0
    failed: list[str] = []
    for n, raw in enumerate(parsed.entries, 1):
        # One entry's oddity is that entry's warning, never the feed's end.
        try:
            article = to_article(raw, base_url=base_url, fetched_at=now)
            tagging = tag_article(ruleset, article, name)
            # The story key is computed here, in parallel, not in the single writer thread.
            key = story_key(article.title, article.text, article.published) if stories else None
            digest = content_hash(article.title, article.text)
        except Exception as exc:
            log.debug("entry %d of %s skipped", n, base_url, exc_info=True)
            failed.append(f"entry {n}: {type(exc).__name__}: {str(exc)[:120]}")
            continue
        bad_dates += date_out_of_range(raw.published, now)
        items.append((article, tagging))
        hashes.append(digest)
        if key is not None:
            keys.append(key)
    warnings = [parsed.warning] if parsed.warning else []
    if bad_dates:
        warnings.append(
            f"{bad_dates} entries had dates before 1990 or more than a day ahead; dated when first seen instead"
        )
    if failed:
        warnings.append(f"{len(failed)} entries could not be read and were skipped: " + "; ".join(failed[:3]))
    return _Parsed(
        title=parsed.title or None,
        link=parsed.link,
        warning="; ".join(warnings) or None,
        items=items,
        story_keys=keys,
        hashes=hashes,
    )


_worker_ruleset: RuleSet | None = None


def _init_worker(ruleset: RuleSet, parent_pid: int) -> None:
    global _worker_ruleset
    _worker_ruleset = ruleset
    # Ctrl-C reaches the whole process group; the parent decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # If the parent is killed outright (SIGKILL, the OOM killer) nothing tells
    # the pool's workers, which would wait forever on a queue whose other end
    # they hold themselves. Leave as soon as we are orphaned.
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True, name="orphan-watch").start()


def _exit_when_orphaned(parent_pid: int, every: float = 1.0) -> None:
    while True:
        time.sleep(every)
        if os.getppid() != parent_pid:
            os._exit(0)


def _worker_parse(
    body: bytes, base_url: str, content_type: str | None, feed_name: str | None, now: datetime, stories: bool = True
) -> _Parsed:
    assert _worker_ruleset is not None
    return parse_clean_tag(_worker_ruleset, body, base_url, content_type, feed_name, now, stories)


def default_processes() -> int:
    """Worker processes for parsing: one per core, none on a single core."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return n if n > 1 else 0


class ParserPool:
    """Worker processes that parse, clean and tag, kept across poll rounds.

    `monitor run` keeps one for its lifetime so a busy scheduler does not
    start processes every minute; it is rebuilt when the rule set changes.
    spawn, not fork: this process has threads (the scheduler's, the fetch
    pool's) that a fork would copy mid-flight.
    """

    def __init__(self, processes: int):
        self.processes = processes
        self._executor: ProcessPoolExecutor | None = None
        self._version: str | None = None
        self._lock = threading.Lock()

    def executor(self, ruleset: RuleSet) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None or self._version != ruleset.version:
                if self._executor is not None:
                    self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = ProcessPoolExecutor(
                    max_workers=self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_worker,
                    initargs=(ruleset, os.getpid()),
                )
                self._version = ruleset.version
            return self._executor

    def discard(self) -> None:
        """Drop a broken pool; the next round starts a fresh one."""
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor, self._version = None, None

    def close(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor, self._version = None, None

    def __enter__(self) -> ParserPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Pipeline:
    # Below this many feeds a round is parsed in the fetching threads: starting
    # worker processes costs more than it saves.
    MIN_FEEDS_FOR_PROCESSES = 8
    # At most this many feeds per write transaction: what a kill mid-round can lose (and refetch).
    MAX_BATCH = 50

    def __init__(
        self,
        store: Store,
        fetcher: Fetcher,
        ruleset: RuleSet,
        *,
        policy: Policy = Policy(),
        concurrency: int = 16,
        processes: int | None = None,
        parser_pool: ParserPool | None = None,
        story_window: timedelta = DEFAULT_WINDOW,
        stories: bool = True,
    ):
        self.store = store
        self.fetcher = fetcher
        self.ruleset = ruleset
        self.policy = policy
        self.concurrency = concurrency
        self.processes = default_processes() if processes is None else processes
        self.parser_pool = parser_pool
        self.story_window = story_window
        self.stories = stories
        self._cpu: Executor | None = None
        self.parsed_in_processes = 0  # feeds whose bodies a worker process parsed (for tests and logs)
        self._count_lock = threading.Lock()

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
        own_pool = None
        if self.processes and len(feeds) >= self.MIN_FEEDS_FOR_PROCESSES:
            parsers = self.parser_pool
            if parsers is None:
                parsers = own_pool = ParserPool(self.processes)
            self._cpu = parsers.executor(ruleset)
        try:
            return self._poll(feeds, ruleset, now, summary, on_feed_done, stop)
        finally:
            self._cpu = None
            if own_pool is not None:
                own_pool.close()

    def _poll(
        self,
        feeds: Sequence[Feed],
        ruleset: RuleSet,
        now: datetime,
        summary: PollSummary,
        on_feed_done: Callable[[FeedReport], None] | None,
        stop: threading.Event | None,
    ) -> PollSummary:
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(feeds)), thread_name_prefix="poll") as pool:
            # Feeds are handed to the pool only a little ahead of the writer: fetched and
            # parsed feeds wait in memory until written, so submitting a 10,000-feed round
            # at once held most of it in memory when the writer was the slower side.
            queue = iter(feeds)
            ahead = max(2 * self.MAX_BATCH, 4 * self.concurrency)
            pending: set[Future[_Work]] = set()

            def top_up() -> None:
                for feed in queue:
                    pending.add(pool.submit(self._work, feed, ruleset, now))
                    if len(pending) >= ahead:
                        break

            top_up()
            try:
                while pending:
                    if stop is not None and stop.is_set():
                        summary.interrupted = True
                        break
                    done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    ready = list(done)
                    # Every feed finished meanwhile goes into one transaction (at most
                    # MAX_BATCH): when the writer keeps up, batches are one feed; when it
                    # falls behind, they grow and the commits thin out.
                    for start in range(0, len(ready), self.MAX_BATCH):
                        works = [fut.result() for fut in ready[start : start + self.MAX_BATCH]]
                        reports = self._write_batch(works, now, ruleset.version, stop)
                        summary.feeds.extend(reports)
                        if on_feed_done is not None:
                            for report in reports:
                                on_feed_done(report)
                        if len(reports) < len(works):
                            summary.interrupted = True
                            break
                    if summary.interrupted:
                        break
                    top_up()
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
        parsed = self._parse(ruleset, result.body or b"", result.final_url, result.content_type, feed.name, now)
        if parsed.error is not None:
            return self._failed(feed, now, parsed.error, result)
        update = healthy("ok")
        update.warning = parsed.warning
        update.title = parsed.title
        update.site_url = parsed.link
        return _Work(feed, update, parsed.items, parsed.story_keys, parsed.hashes)

    def _parse(
        self, ruleset: RuleSet, body: bytes, url: str, content_type: str | None, name: str | None, now: datetime
    ) -> _Parsed:
        cpu = self._cpu
        if cpu is not None:
            try:
                parsed = cpu.submit(_worker_parse, body, url, content_type, name, now, self.stories).result()
                with self._count_lock:
                    self.parsed_in_processes += 1
                return parsed
            except BrokenProcessPool:
                log.warning("parser worker process died; parsing in-process for the rest of this round")
                self._cpu = None
                if self.parser_pool is not None:
                    self.parser_pool.discard()
            except RuntimeError:  # the pool was shut down under us (a stop request)
                pass
        return parse_clean_tag(ruleset, body, url, content_type, name, now, self.stories)

    def _write_batch(
        self, works: list[_Work], now: datetime, rules_version: str, stop: threading.Event | None
    ) -> list[FeedReport]:
        """Store several feeds' polls in one transaction; the reports come back once it committed.

        Each feed is its own savepoint inside it, so one feed's storage error
        rolls back that feed only. A kill mid-batch loses the whole batch,
        feed rows (ETag, Last-Modified) included, so the next poll fetches
        those feeds again in full. `stop` set: the feeds written so far are
        committed and the rest skipped.
        """
        reports: list[FeedReport] = []
        try:
            with self.store.transaction():
                for work in works:
                    if stop is not None and stop.is_set():
                        break
                    report = self._write(work, now, rules_version)
                    if report.status == "storage_error" and not self.store.in_transaction():
                        # SQLite rolled the whole transaction back (disk full, I/O error).
                        raise StorageError(report.error or "the batch's transaction was rolled back")
                    reports.append(report)
        except StorageError as exc:
            log.error("%d feeds not stored: %s", len(works), exc)
            return [
                FeedReport(w.feed.url, w.feed.name or w.update.title or w.feed.title or w.feed.url, "storage_error",
                           error=str(exc))
                for w in works
            ]
        return reports

    def _write(self, work: _Work, now: datetime, rules_version: str) -> FeedReport:
        feed, update = work.feed, work.update
        name = feed.name or update.title or feed.title or feed.url
        try:
            stats = save_poll(
                self.store,
                feed,
                update,
                work.items,
                now=now,
                rules_version=rules_version,
                story_keys=work.story_keys or None,
                story_window=self.story_window,
                hashes=work.hashes or None,
            )
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
            warning=stats.warning,
        )
        if update.error:
            log.warning("%s: %s: %s", feed.url, update.status, update.error)
        elif stats.warning:
            log.warning("%s: stored with a warning: %s", feed.url, stats.warning)
        return report
