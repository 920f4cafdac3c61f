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
import re
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
from urllib.parse import urljoin

from core.errors import MonitorError, StorageError
from core.types import Article, StoryKey, Tagging, content_hash
from monitor.clean import canonical_url, date_out_of_range, to_article
from monitor.decide import Policy, decide
from monitor.fetch import Fetcher, FetchResult
from monitor.fulltext import (
    FullTextSettings,
    failure_warning,
    retrieve_pages,
    wants_page,
)
from monitor.ingest import save_poll
from monitor.parse import RawEntry, parse_feed
from monitor.stories import DEFAULT_WINDOW, fetch_story_keys, story_key
from rules import RuleSet
from storage import Feed, FeedUpdate, Store, open_store

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
    # The first write the database refused (disk full, locked past the busy
    # timeout, read-only): the CLI then exits non-zero.
    store_error: str | None = None

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

    def causes(self) -> list[tuple[str, int]]:
        """Why feeds failed, grouped: [("connection refused", 5), ("HTTP 404", 3), ...], most first."""
        counts: dict[str, int] = {}
        for f in self.feeds:
            if f.status in FAILED_STATUSES:
                cause = failure_cause(f.status, f.error)
                counts[cause] = counts.get(cause, 0) + 1
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    def line(self) -> str:
        failed = f"{self.failed} failed"
        if self.failed:
            failed += " (" + ", ".join(f"{n} {cause}" for cause, n in self.causes()) + ")"
        text = (
            f"polled {len(self.feeds)} feeds: {self.ok} ok, {self.not_modified} not modified, "
            f"{failed}; {self.new} new articles, {self.flagged} flagged"
            + (" (interrupted)" if self.interrupted else "")
        )
        if self.store_error:
            n = self.count("storage_error")
            text += (
                f"\nNOT STORED: {n} feed{'s' if n != 1 else ''} could not be written to the database "
                f"(they stay as before and are polled again): {self.store_error}"
            )
        return text


FAILED_STATUSES = ("error", "paused", "gone", "throttled", "storage_error")

# (what the error line starts with or contains, the cause it is grouped under)
_CAUSES: list[tuple[str, str]] = [
    ("connection refused", "connection refused"),
    ("host name not found", "host name not found (DNS)"),
    ("connection timed out", "connection timed out"),
    ("TLS error", "TLS error"),
    ("invalid URL", "invalid URL"),
    ("response larger than", "too large"),
    ("server too slow", "too slow"),
    ("read timed out", "too slow"),
    ("stopped sending", "too slow"),
    ("redirect", "redirect problem"),
    ("internal error", "internal error (a bug; see the log)"),
    ("malformed feed", "malformed feed"),
]


def failure_cause(status: str, error: str | None) -> str:
    """A failed feed's error line reduced to a short cause for the summary's grouping."""
    if status == "storage_error":
        return "not stored"
    if status == "gone":
        return "HTTP 410 Gone"
    text = error or status
    m = re.match(r"HTTP (\d{3})", text)
    if m:
        return f"HTTP {m.group(1)}"
    for needle, cause in _CAUSES:
        if needle in text:
            return cause
    if status == "paused":
        return "paused after repeated errors"
    # The fetch succeeded, so what remains is the body: parse errors.
    return "not a feed"


@dataclass
class _Work:
    """What a worker hands back for the writer: nothing here has touched the database."""

    feed: Feed
    update: FeedUpdate
    items: list[tuple[Article, Tagging]]
    story_keys: list[StoryKey] = field(default_factory=list)
    pages_done: bool = False  # the full-text step ran (or had nothing to do)
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
    deferred: int = 0  # entries left for the next poll by the per-round cap
    title: str | None = None
    link: str | None = None
    warning: str | None = None
    items: list[tuple[Article, Tagging]] = field(default_factory=list)
    story_keys: list[StoryKey] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)  # content hashes, one per item: made here, not in the writer


# Memory bounds for one feed (issue 9: a 50,000-entry feed peaked at 400 MB,
# one 9 MB entry at 250 MB). Past MAX_ENTRIES_PER_ROUND entries, the ones not
# stored yet go first and the rest wait for the next poll (the feed's ETag is
# then not kept, so that poll gets the whole feed again). An entry's HTML is
# cut at MAX_ENTRY_HTML characters before it is cleaned: a story is never
# that long, and the HTML tree of 9 MB is what cost the memory.
MAX_ENTRIES_PER_ROUND = 5000
MAX_ENTRY_HTML = 1_000_000


def estimated_entries(body: bytes) -> int:
    """A cheap upper estimate of a feed's entry count, before parsing it."""
    return body.count(b"<item") + body.count(b"<entry") + body.count(b'"id"')


def _trim_html(html: str) -> str:
    if len(html) <= MAX_ENTRY_HTML:
        return html
    cut = html.rfind("<", MAX_ENTRY_HTML - 10_000, MAX_ENTRY_HTML)  # not inside a tag
    return html[: cut if cut > 0 else MAX_ENTRY_HTML]


def _choose_entries(entries: list[RawEntry], known: frozenset[str] | None, base_url: str) -> tuple[list[RawEntry], int]:
    """At most MAX_ENTRIES_PER_ROUND entries: those not stored yet first, in feed order.

    "Stored" is judged by the entry's guid or canonical URL among the feed's
    stored keys and URLs: a shortcut for choosing only; what is new or an
    update is still decided by monitor.ingest on the chosen ones."""
    if len(entries) <= MAX_ENTRIES_PER_ROUND:
        return entries, 0
    known = known or frozenset()

    def is_known(e: RawEntry) -> bool:
        guid = (e.guid or "").strip()
        if guid and guid in known:
            return True
        link = (e.link or "").strip()
        return bool(link) and canonical_url(urljoin(base_url, link)) in known

    fresh = [i for i, e in enumerate(entries) if not is_known(e)]
    old = [i for i, e in enumerate(entries) if is_known(e)]
    keep = sorted((fresh + old)[:MAX_ENTRIES_PER_ROUND])
    return [entries[i] for i in keep], max(0, len(fresh) - MAX_ENTRIES_PER_ROUND)


def parse_clean_tag(
    ruleset: RuleSet,
    body: bytes,
    base_url: str,
    content_type: str | None,
    feed_name: str | None,
    now: datetime,
    stories: bool = True,
    known: frozenset[str] | None = None,
) -> _Parsed:
    """Bytes to tagged articles: the pure middle of the pipeline (runs in a thread or a worker process).

    ``known``: the guids and links this feed has stored, given for a feed
    past the per-round cap so that the entries not stored yet go first."""
    try:
        parsed = parse_feed(body, base_url, content_type)
    except MonitorError as exc:
        return _Parsed(error=str(exc))
    del body  # the parsed entries are all that is needed from here on
    name = feed_name or parsed.title or base_url
    items, keys, hashes = [], [], []
    bad_dates = 0
    failed: list[str] = []
    total = len(parsed.entries)
    chosen, deferred = _choose_entries(parsed.entries, known, base_url)
    parsed.entries = []  # let what is not chosen go now
    trimmed = 0
    for n, raw in enumerate(chosen, 1):
        if len(raw.content_html) > MAX_ENTRY_HTML or len(raw.summary_html) > MAX_ENTRY_HTML:
            raw.content_html, raw.summary_html = _trim_html(raw.content_html), _trim_html(raw.summary_html)
            trimmed += 1
        # One entry's oddity is that entry's warning, never the feed's end.
        try:
            article = to_article(raw, base_url=base_url, fetched_at=now)
            tagging = tag_article(ruleset, article, name)
            digest = content_hash(article.title, article.feed_text)
        except Exception as exc:
            log.debug("entry %d of %s skipped", n, base_url, exc_info=True)
            failed.append(f"entry {n}: {type(exc).__name__}: {str(exc)[:120]}")
            continue
        bad_dates += date_out_of_range(raw.published, now)
        items.append((article, tagging))
        hashes.append(digest)
    if stories and items:
        # The story keys are made here, in parallel, not in the single writer thread; the whole
        # fetch at once, so the feed's template is dropped here too (the writer's
        # ingest.discount_template then finds none and recomputes nothing).
        keys = fetch_story_keys([(a.title, a.text, a.published) for a, _ in items])
    warnings = [parsed.warning] if parsed.warning else []
    if bad_dates:
        warnings.append(
            f"{bad_dates} entries had dates before 1990 or more than a day ahead; dated when first seen instead"
        )
    if failed:
        warnings.append(f"{len(failed)} entries could not be read and were skipped: " + "; ".join(failed[:3]))
    if trimmed:
        warnings.append(f"{trimmed} entries longer than {MAX_ENTRY_HTML:,} characters of HTML were cut there")
    if deferred:
        warnings.append(
            f"the feed has {total:,} entries; {MAX_ENTRIES_PER_ROUND:,} were read this round, "
            f"{deferred:,} not stored yet are left for the next polls"
        )
    return _Parsed(
        deferred=deferred,
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
    body: bytes,
    base_url: str,
    content_type: str | None,
    feed_name: str | None,
    now: datetime,
    stories: bool = True,
    known: frozenset[str] | None = None,
) -> _Parsed:
    assert _worker_ruleset is not None
    return parse_clean_tag(_worker_ruleset, body, base_url, content_type, feed_name, now, stories, known)


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
        full_text: FullTextSettings = FullTextSettings(),
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
        self.full_text = full_text
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
                    ready: list[_Work] = []
                    for fut in done:
                        work = fut.result()
                        if not work.pages_done and self._full_text_step(work, pool, pending, ruleset, now):
                            continue  # written when its pages are in
                        ready.append(work)
                    # Every feed finished meanwhile goes into one transaction (at most
                    # MAX_BATCH): when the writer keeps up, batches are one feed; when it
                    # falls behind, they grow and the commits thin out.
                    for start in range(0, len(ready), self.MAX_BATCH):
                        works = ready[start : start + self.MAX_BATCH]
                        reports = self._write_batch(works, now, ruleset.version, stop)
                        summary.feeds.extend(reports)
                        for report in reports:
                            if on_feed_done is not None:
                                on_feed_done(report)
                            if report.status == "storage_error" and summary.store_error is None:
                                # The feed stays as it was (its savepoint or the batch rolled
                                # back) and the round goes on: one feed's write may fail alone
                                # (an entry SQLite refuses); a full disk fails them all, quickly.
                                summary.store_error = report.error
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
        body = result.body or b""
        result.body = None  # one copy of the body, held by `body` until parsed
        known = self._known_keys(feed) if estimated_entries(body) > MAX_ENTRIES_PER_ROUND else None
        parsed = self._parse(ruleset, body, result.final_url, result.content_type, feed.name, now, known)
        del body
        if parsed.error is not None:
            return self._failed(feed, now, parsed.error, result)
        update = healthy("ok")
        if parsed.deferred:
            # Not kept: a 304 on the next poll would hide the entries left for it.
            update.etag, update.last_modified = feed.etag, feed.last_modified
            update.next_due = now
        update.warning = parsed.warning
        update.title = parsed.title
        update.site_url = parsed.link
        return _Work(feed, update, parsed.items, parsed.story_keys, hashes=parsed.hashes)

    def _known_keys(self, feed: Feed) -> frozenset[str]:
        """The guids and URLs this feed has stored, read on this thread's own connection
        (the store's belongs to the writer thread). Only for a feed past the cap."""
        try:
            with open_store(self.store.target) as reader:
                return reader.feed_entry_keys(feed.id)
        except MonitorError:
            return frozenset()

    def _parse(
        self,
        ruleset: RuleSet,
        body: bytes,
        url: str,
        content_type: str | None,
        name: str | None,
        now: datetime,
        known: frozenset[str] | None = None,
    ) -> _Parsed:
        cpu = self._cpu
        if cpu is not None:
            try:
                parsed = cpu.submit(_worker_parse, body, url, content_type, name, now, self.stories, known).result()
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
        return parse_clean_tag(ruleset, body, url, content_type, name, now, self.stories, known)

    # ------------------------------------------------------------- full text

    def _full_text_step(
        self, work: _Work, pool: ThreadPoolExecutor, pending: set[Future[_Work]], ruleset: RuleSet, now: datetime
    ) -> bool:
        """In the writer thread: queue the pages this fetch needs; False when there are none.

        Only pages of articles not stored yet are fetched; an entry whose
        article is stored gets the stored full text back (no request), so an
        edit keeps seeing it and a second poll fetches nothing.
        """
        work.pages_done = True
        if not work.feed.full_text and self.full_text.min_chars <= 0:
            return False  # the common case: not a word of the fetch is looked at
        wanted = [
            i for i, (a, _) in enumerate(work.items)
            if wants_page(feed_full_text=bool(work.feed.full_text), text_chars=len(a.text),
                          min_chars=self.full_text.min_chars)
        ]
        if not wanted:
            return False
        stored = self.store.full_texts_by_url({work.items[i][0].url for i in wanted})
        reuse = {i: stored[work.items[i][0].url] for i in wanted if work.items[i][0].url in stored}
        fetch = [i for i in wanted if work.items[i][0].url not in stored]
        if not fetch and not any(text for text, _ in reuse.values()):
            return False
        pending.add(pool.submit(self._add_pages, work, fetch, reuse, ruleset, now))
        return True

    def _add_pages(
        self, work: _Work, fetch: list[int], reuse: dict[int, tuple[str, str | None]], ruleset: RuleSet, now: datetime
    ) -> _Work:
        """In a poll thread: fetch the pages, then tag those articles (and key their stories) again."""
        try:
            links = {i: work.items[i][0].link for i in fetch}
            pages = retrieve_pages(
                self.fetcher,
                [u for u in links.values() if u.startswith(("http://", "https://"))],
                now=now,
                workers=self.fetcher.settings.per_host,
            )
            failed: list[tuple[str, str]] = []
            changed: list[int] = []
            for i, link in links.items():
                page = pages.get(link)
                error = page.error if page else "the entry has no http(s) link"
                work.items[i][0].set_full_text(page.text if page else "", error)
                if error:
                    failed.append((link or work.items[i][0].url, error))
                else:
                    changed.append(i)
            for i, (text, error) in reuse.items():
                if text:
                    work.items[i][0].set_full_text(text, error)
                    changed.append(i)
            name = work.feed.name or work.update.title or work.feed.url
            keyed = self.stories and len(work.story_keys) == len(work.items)
            for i in changed:
                article = work.items[i][0]
                work.items[i] = (article, tag_article(ruleset, article, name))
                if keyed:
                    work.story_keys[i] = story_key(article.title, article.text, article.published)
            note = failure_warning(failed, len(fetch))
        except Exception as exc:
            log.exception("internal error while retrieving full text for %s", work.feed.url)
            note = f"full text not retrieved: internal error: {type(exc).__name__}: {exc}"
        if note:
            work.update.warning = f"{work.update.warning}; {note}" if work.update.warning else note
        return work

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
