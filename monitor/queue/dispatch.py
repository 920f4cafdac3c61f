"""The scheduler's side: enqueue one task per due feed, wait for results, hold the scheduler lock.

A feed is enqueued only when no task of it is pending: a Redis key per feed
(`SET NX`, naming the task) is set on enqueue and cleared by the task when
it is done, so a slow worker or a queue that backs up never gets the same
feed twice from the scheduler. Its expiry covers a task lost with Redis.

The feed rows stay the only record of what is due: a feed is due until a
worker has written its poll, so when Redis is down nothing is enqueued and
nothing is lost; the next tick after Redis is back enqueues what is due.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime

import celery.exceptions
import kombu.exceptions
import redis
from celery.result import AsyncResult

from core.errors import MonitorError, RuleError
from core.redact import redact_url
from monitor.config import Config, QueueConfig
from monitor.pipeline import FeedReport, PollSummary
from monitor.queue.locks import RedisLock, redis_client
from monitor.queue.rulebook import publish_rules
from monitor.queue.tasks import NO_RESULT, PENDING, QUEUE, TASK, make_celery
from storage import Feed

log = logging.getLogger("monitor.queue")

SCHEDULER_LOCK = "monitor:scheduler"
_DOWN = (redis.RedisError, kombu.exceptions.OperationalError, ConnectionError, OSError)


class QueueUnavailable(MonitorError):
    """The broker (Redis) cannot be reached."""


def unavailable(queue: QueueConfig, exc: BaseException) -> QueueUnavailable:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return QueueUnavailable(f"queue: Redis at {redact_url(queue.broker)} cannot be reached ({reason[:160]})")


class Dispatcher:
    """Sends per-feed tasks and collects their reports."""

    def __init__(self, queue: QueueConfig):
        self.queue = queue
        self.app = make_celery(queue)
        self.redis = redis_client(queue.broker)
        # A pending mark outlives its task only when the task was lost (Redis restarted empty).
        self.pending_ttl = queue.visibility_timeout + 2 * queue.task_timeout

    def enqueue(
        self, feeds: Sequence[Feed], version: str, *, results: bool = True
    ) -> tuple[list[tuple[Feed, AsyncResult]], int]:
        """One task per feed not already pending; returns (feed, its task) for all, and how many were already pending.

        `results=False` (the scheduler's rounds: nobody reads them) keeps the
        reports out of the result backend: at 10,000 feeds every 15 minutes
        they would be about a million keys a day for `result_expires`."""
        out: list[tuple[Feed, AsyncResult]] = []
        already = 0
        try:
            for feed in feeds:
                key = PENDING.format(feed.id)
                task_id = str(uuid.uuid4())
                # The mark says whether the task keeps its report: `monitor poll` can wait on a pending
                # task only if it does; else it sends its own (the feed lock runs them one after the other).
                mark = task_id if results else f"{task_id}{NO_RESULT}"
                if self.redis.set(key, mark, nx=True, ex=self.pending_ttl):
                    try:
                        self._send(feed, version, task_id, results)
                    except BaseException:
                        self.redis.delete(key)  # not sent: the next tick must be free to send it
                        raise
                else:
                    existing = self.redis.get(key)
                    existing = existing.decode() if isinstance(existing, bytes) else str(existing or "")
                    if existing and not (results and existing.endswith(NO_RESULT)):
                        task_id = existing.removesuffix(NO_RESULT)
                        already += 1
                    elif results:
                        self._send(feed, version, task_id, results)
                    else:
                        already += 1
                out.append((feed, self.app.AsyncResult(task_id)))
        except _DOWN as exc:
            raise unavailable(self.queue, exc) from None
        return out, already

    def _send(self, feed: Feed, version: str, task_id: str, results: bool) -> None:
        self.app.send_task(
            TASK, args=[feed.id, feed.url, version], task_id=task_id, queue=QUEUE, ignore_result=not results,
            retry=True, retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5},
        )

    def wait(
        self, sent: list[tuple[Feed, AsyncResult]], on_feed_done: Callable[[FeedReport], None] | None = None,
        quiet_warning: float = 30.0,
    ) -> list[FeedReport]:
        """Each feed's report, in the order sent (tasks mostly finish in that order too).

        `get` waits on the result backend's pub/sub: checking every pending
        result's state in a loop cost Redis thousands of reads a second on a
        big round, on the cores the workers need."""
        reports: list[FeedReport] = []
        warned = False
        for n, (feed, result) in enumerate(sent):
            while True:
                try:
                    result.get(timeout=quiet_warning, propagate=False, disable_sync_subtasks=False)
                    break
                except celery.exceptions.TimeoutError:
                    if not warned:
                        log.warning(
                            "no result for %d s (%d feeds waiting): is a `monitor worker` running for this queue?",
                            quiet_warning, len(sent) - n,
                        )
                        warned = True
                except _DOWN as exc:
                    raise unavailable(self.queue, exc) from None
            report = _report(feed, result)
            reports.append(report)
            if on_feed_done is not None:
                on_feed_done(report)
        return reports


def _report(feed: Feed, result: AsyncResult) -> FeedReport:
    name = feed.name or feed.title or feed.url
    if result.successful():
        data = result.result
        if isinstance(data, dict):
            return FeedReport(**{k: data[k] for k in FeedReport.__dataclass_fields__ if k in data})
    error = result.result
    return FeedReport(feed.url, name, "error", error=f"internal error: worker: {type(error).__name__}: {error}")


def poll_via_queue(
    config: Config,
    *,
    feed_urls: list[str] | None = None,
    due_only: bool = False,
    now: datetime,
    progress: Callable[[int], AbstractContextManager[Callable[[FeedReport], None]]] | None = None,
) -> PollSummary:
    """`monitor poll` with a broker: enqueue the named, due or all feeds, wait for every report."""
    from monitor.service import open_store, select_feeds

    assert config.queue is not None
    with open_store(config, now=now) as store:
        feeds = select_feeds(store, feed_urls=feed_urls or [], due_only=due_only, now=now)
        version = publish_rules(store, config.rule_files)
    summary = PollSummary()
    if not feeds:
        return summary
    dispatcher = Dispatcher(config.queue)
    sent, _ = dispatcher.enqueue(feeds, version)
    if progress is not None:
        with progress(len(sent)) as on_feed_done:
            summary.feeds = dispatcher.wait(sent, on_feed_done)
    else:
        summary.feeds = dispatcher.wait(sent)
    summary.store_error = next((f.error for f in summary.feeds if f.status == "storage_error"), None)
    return summary


class QueueScheduler:
    """`monitor run` with a broker: holds the one scheduler lock and enqueues due feeds each tick.

    Redis down is one line when it starts and one when it ends, never a
    traceback per tick; the rounds just wait."""

    def __init__(self, queue: QueueConfig):
        self.queue = queue
        self.dispatcher = Dispatcher(queue)
        self.lock = RedisLock(
            self.dispatcher.redis, SCHEDULER_LOCK, queue.lock_timeout, owner=f"pid {os.getpid()} on {socket.gethostname()}"
        )
        self.down = False
        self.waiting_for: str | None = None  # the other scheduler we wait for, once said
        self.version: str | None = None
        self._state = threading.Lock()
        self._stop = threading.Event()
        # Renewed between ticks too: a tick (or a digest job) may outlast the lock's ttl.
        self._renewer = threading.Thread(target=self._renew, daemon=True, name="scheduler-lock")
        self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.queue.lock_timeout / 3):
            self.is_leader()

    def is_leader(self) -> bool:
        """Hold (renew, or take) the scheduler lock; say once when another holds it or Redis is down."""
        with self._state:
            return self._is_leader()

    def _is_leader(self) -> bool:
        try:
            held = self.lock.ensure()
            holder = None if held else self.lock.holder()
        except _DOWN as exc:
            self._went_down(exc)
            return False
        self._came_back()
        if held:
            if self.waiting_for is not None:
                log.info("scheduler lock taken: this `monitor run` schedules now")
                self.waiting_for = None
            return True
        if self.waiting_for != holder:
            log.warning(
                "another `monitor run` is scheduling (%s); this one waits and takes over if it stops",
                holder or "unknown",
            )
            self.waiting_for = holder or ""
        return False

    def tick(self, config: Config, *, now: datetime) -> int:
        """Enqueue the due feeds no task is pending for; returns how many were sent."""
        from monitor.service import open_store

        if not self.is_leader():
            return 0
        with open_store(config, now=now) as store:
            try:
                self.version = publish_rules(store, config.rule_files)
            except RuleError:
                if self.version is None:
                    raise
                # The scheduler logged why already; the version in force stays.
            feeds = store.feeds_due(now)
        if not feeds:
            return 0
        try:
            sent, already = self.dispatcher.enqueue(feeds, self.version, results=False)
        except QueueUnavailable as exc:
            self._went_down(exc)
            return 0
        self._came_back()
        if len(sent) - already:
            log.info("enqueued %d due feeds (%d still pending)", len(sent) - already, already)
        return len(sent) - already

    def _went_down(self, exc: BaseException) -> None:
        if not self.down:
            log.error("%s; waiting: the due feeds are enqueued when it is back, none is lost",
                      exc if isinstance(exc, QueueUnavailable) else unavailable(self.queue, exc))
            self.down = True

    def _came_back(self) -> None:
        if self.down:
            log.info("queue: Redis at %s is reachable again", redact_url(self.queue.broker))
            self.down = False

    def close(self) -> None:
        self._stop.set()
        try:
            self.lock.release()
        except _DOWN:
            pass


__all__ = ["Dispatcher", "QueueScheduler", "QueueUnavailable", "poll_via_queue"]
