"""The worker's side: the Celery app and the per-feed task.

One task polls one feed end to end through the one Pipeline (fetch, parse,
clean, tag, stories, decide, write) and returns its FeedReport as plain
data. Safe to run twice: a redelivered task (late acknowledgement, a worker
killed half-way) polls the feed again, and the store's unique constraints
and the decider make the second write add nothing; a kill mid-write rolls
the feed's transaction back, so nothing is half-stored. A per-feed Redis
lock keeps two workers off one feed (the second retries until it is free),
and host leases hold `[fetch] per_host` across all workers.

Celery calls tasks with their arguments only, so the worker's configuration
lives in one per-process context set by `run_worker` (the one global here);
connections are opened lazily in each prefork child, never inherited.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from celery.exceptions import MaxRetriesExceededError

from core.errors import MonitorError, NotFound
from monitor.config import Config, QueueConfig
from monitor.fetch import Fetcher, FetchResult, FetchSettings
from monitor.pipeline import FeedReport
from monitor.queue.locks import HostLeases, RedisLock, redis_client
from monitor.queue.rulebook import RuleCache
from monitor.settings import fetch_settings
from storage import open_store

log = logging.getLogger("monitor.queue")

TASK = "monitor.poll_feed"
QUEUE = "monitor.feeds"
FEED_LOCK = "monitor:feed:{}"
PENDING = "monitor:pending:{}"  # the pending task's id (+ NO_RESULT when it keeps no report)
NO_RESULT = "/noresult"
RETRY_EVERY = 1.0  # seconds between a task's looks at a feed another worker holds

_RELEASE_PENDING = """
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, #ARGV[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def make_celery(queue: QueueConfig) -> Celery:
    """The Celery app both sides use: late acks, requeue on a lost worker, one task prefetched at a time."""
    app = Celery("monitor", broker=queue.broker, backend=queue.result_backend, set_as_current=False)
    transport = {"visibility_timeout": queue.visibility_timeout, "socket_connect_timeout": 5}
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_time_limit=queue.task_timeout,
        task_default_queue=QUEUE,
        broker_transport_options=transport,
        result_backend_transport_options=transport,
        broker_connection_retry_on_startup=True,
        result_expires=24 * 3600,
        worker_hijack_root_logger=False,  # keep our handlers, and the redacting filter on them
        worker_redirect_stdouts=False,
    )
    app.task(name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)(_poll_feed_task)
    return app


class ClusterFetcher(Fetcher):
    """The Fetcher, holding a cluster-wide lease on the URL's host for each request."""

    def __init__(self, settings: FetchSettings, leases: HostLeases):
        super().__init__(settings)
        self.leases = leases

    def fetch(self, url: str, **kwargs: Any) -> FetchResult:  # type: ignore[override]
        host = (urlsplit(url).hostname or "").lower()
        with self.leases.hold(host):
            return super().fetch(url, **kwargs)


class _Connections(threading.local):
    """One task runner's own connections: a prefork child's, or one thread's of a thread pool."""

    pid: int | None = None
    redis: Any = None
    store: Any = None
    fetcher: Any = None


class WorkerContext:
    """What a worker keeps between tasks: config, rules by version, and connections per process and thread.

    A Store is never shared between threads, so with `--threads` each
    thread opens its own (and its own HTTP session); the rules are shared.
    """

    def __init__(self, config: Config):
        assert config.queue is not None
        self.config = config
        self.queue: QueueConfig = config.queue
        self.rules = RuleCache()
        self._local = _Connections()

    def _open(self) -> None:
        c = self._local
        if c.pid == os.getpid():
            return
        c.redis = redis_client(self.queue.broker)
        c.store = open_store(self.config.store_target)
        settings = fetch_settings(self.config)
        # A lease outlives its fetch's total deadline only if the worker died holding it.
        leases = HostLeases(c.redis, self.config.per_host, lease_seconds=settings.total_timeout + 30)
        c.fetcher = ClusterFetcher(settings, leases)
        c.pid = os.getpid()

    @property
    def redis(self) -> Any:
        return self._local.redis

    @property
    def store(self) -> Any:
        return self._local.store

    @property
    def fetcher(self) -> Any:
        return self._local.fetcher

    def poll(self, feed_id: int, feed_url: str, version: str) -> FeedReport:
        """Poll one feed (holding its lock); None when another worker holds it."""
        from monitor.service import build_pipeline

        self._open()
        try:
            feed = self.store.get_feed(feed_url)
        except NotFound:
            return FeedReport(feed_url, feed_url, "removed", error="the feed is no longer in the database")
        ruleset = self.rules.get(self.store, version)
        pipeline = build_pipeline(self.config, self.store, self.fetcher, ruleset, processes=0)
        summary = pipeline.poll([feed], now=datetime.now(timezone.utc))
        if not summary.feeds:
            return FeedReport(feed.url, feed.name or feed.url, "skipped")
        return summary.feeds[0]


_CONTEXT: WorkerContext | None = None


def _poll_feed_task(task: Any, feed_id: int, feed_url: str, version: str) -> dict[str, Any]:
    ctx = _CONTEXT
    if ctx is None:
        raise MonitorError("this process is not a monitor worker (start it with `monitor worker`)")
    ctx._open()
    lock = RedisLock(ctx.redis, FEED_LOCK.format(feed_id), ctx.queue.lock_timeout, owner=socket.gethostname())
    if not lock.acquire():
        # Another worker polls this feed right now (a duplicate delivery, or a
        # redelivery while the first is still at it): come back when it is done.
        try:
            raise task.retry(countdown=RETRY_EVERY, max_retries=int(ctx.queue.task_timeout / RETRY_EVERY) + 10)
        except MaxRetriesExceededError:
            return dataclasses.asdict(FeedReport(feed_url, feed_url, "busy", error="another worker held the feed"))
    try:
        with lock.kept():
            report = ctx.poll(feed_id, feed_url, version)
    finally:
        task_id = task.request.id
        if task_id:
            ctx.redis.eval(_RELEASE_PENDING, 1, PENDING.format(feed_id), task_id)
    log.info("%s: %s, %d new, %d flagged", report.name, report.status, report.new, report.flagged)
    return dataclasses.asdict(report)


def run_worker(config: Config, concurrency: int, threads: int = 0) -> int:
    """`monitor worker`: consume per-feed tasks until stopped.

    In `concurrency` prefork processes, or with `threads` in that many threads
    of this one process (a task mostly waits on the network; the parsing
    holds the GIL, so run one such worker per core)."""
    global _CONTEXT
    assert config.queue is not None
    _CONTEXT = WorkerContext(config)
    app = make_celery(config.queue)
    worker = app.Worker(
        concurrency=threads or concurrency,
        pool_cls="threads" if threads else "prefork",
        loglevel="INFO",
        queues=[QUEUE],
        hostname=f"monitor-{os.getpid()}@{socket.gethostname()}",
        without_gossip=True,
        without_mingle=True,
        optimization="fair",
    )
    worker.start()
    return int(worker.exitcode or 0)
