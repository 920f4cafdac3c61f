"""`monitor run`: the long-running scheduler (APScheduler 3.x, BlockingScheduler).

Three jobs with explicit ids, each coalesced with at most one instance:
``poll`` (every minute: the feeds that are due), ``digest`` (daily at
``[digest] time`` in ``[digest] timezone``) and ``housekeeping`` (daily).
Jobs hold no logic: they call one method of `Runner`, which owns the
configuration and rule set in force and reloads them when their files
change. A bad edit is logged and the last good version stays in force.

Nothing here fetches, parses or renders; see pipeline.py and service.py.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.errors import ConfigError, MonitorError, RuleError
from monitor.config import Config, find_config_path, load_config
from monitor.pipeline import PollSummary

log = logging.getLogger("monitor.run")

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _mtimes(paths: list[Path]) -> tuple[tuple[str, float], ...]:
    out = []
    for p in paths:
        try:
            out.append((str(p), p.stat().st_mtime))
        except OSError:
            out.append((str(p), -1.0))
    return tuple(out)


@dataclass
class RoundResult:
    summary: PollSummary
    digests: list[str]


class Runner:
    """The state `monitor run` keeps between jobs: config, rules, and a stop signal."""

    def __init__(self, config_path: str | None, *, clock: Clock = utcnow):
        self.clock = clock
        self.stop = threading.Event()
        self._lock = threading.Lock()
        # Held while a job works on the database: jobs never interleave, and
        # a shutdown waits for the one in progress before its final line.
        self.busy = threading.Lock()
        from monitor.pipeline import ParserPool, default_processes

        # Kept for the runner's lifetime: a busy scheduler does not start
        # worker processes every minute. close() ends them.
        self.parser_pool = ParserPool(default_processes())
        self._explicit_path = config_path
        self.config: Config = load_config(config_path)  # a bad file at start is fatal: nothing runs
        self._config_stamp = _mtimes([self.config.config_path]) if self.config.config_path else ()
        from rules import load_rules

        self.ruleset: Any = load_rules(self.config.rule_files)
        self._rules_stamp = _mtimes(self.config.rule_files)
        # With a [queue] broker: rounds are enqueued for `monitor worker`s (monitor.queue).
        self._queue: Any = None

    def queue_scheduler(self) -> Any:
        """The queue side of `monitor run` (None without a broker): its lock makes one scheduler of several."""
        if self._queue is None and self.config.queue is not None:
            from monitor.queue.dispatch import QueueScheduler

            self._queue = QueueScheduler(self.config.queue)
        return self._queue

    def leads(self) -> bool:
        """Whether this process schedules: always without a broker; with one, while it holds the lock."""
        qs = self.queue_scheduler()
        return qs is None or qs.is_leader()

    # ------------------------------------------------------------ reload

    def reload_if_changed(self) -> None:
        """Re-read the config and rule files if their mtimes changed; keep the last good on error."""
        with self._lock:
            path = find_config_path(self._explicit_path)
            stamp = _mtimes([path]) if path else ()
            if stamp != self._config_stamp:
                self._config_stamp = stamp
                try:
                    self.config = load_config(self._explicit_path)
                    log.info("configuration reloaded from %s", path or "defaults")
                except ConfigError as exc:
                    for line in exc.problems:
                        log.error("configuration not reloaded: %s", line)
                    log.error("keeping the last good configuration")
            rule_stamp = _mtimes(self.config.rule_files)
            if rule_stamp != self._rules_stamp:
                self._rules_stamp = rule_stamp
                from rules import load_rules

                try:
                    self.ruleset = load_rules(self.config.rule_files)
                    log.info("rules reloaded (version %s)", self.ruleset.version)
                except RuleError as exc:
                    for line in exc.problems:
                        log.error("rules not reloaded: %s", line)
                    log.error("keeping the last good rules (version %s)", self.ruleset.version)

    # -------------------------------------------------------------- jobs

    def poll_due(self) -> PollSummary:
        from monitor.service import poll_once

        if self.stop.is_set():
            return PollSummary(interrupted=True)
        with self.busy:
            if self.config.queue is not None:
                return self._enqueue_due()
            return self._poll_due(poll_once)

    def _enqueue_due(self) -> PollSummary:
        """With a broker: only select the due feeds and enqueue them; the workers poll and write."""
        self.reload_if_changed()
        sent = self.queue_scheduler().tick(self.config, now=self.clock())
        if sent or self._sent_before:
            from monitor.service import check_alerts

            check_alerts(self.config, now=self.clock())  # what the workers wrote since the last tick
        self._sent_before = sent
        return PollSummary()

    _sent_before = 0

    def _poll_through_workers(self) -> PollSummary:
        """`run --once` with a broker: enqueue what is due and wait for the workers, as `poll --due` does."""
        from monitor.queue.dispatch import poll_via_queue

        with self.busy:
            if not self.leads():
                return PollSummary()
            return poll_via_queue(self.config, due_only=True, now=self.clock())

    def _poll_due(self, poll_once: Any) -> PollSummary:
        self.reload_if_changed()
        # Each feed's failure is held back until the round is over: when all of
        # them failed to connect, the cause is this machine's network, and one
        # plain line says so instead of a warning per feed.
        held = _HoldWarnings()
        pipeline_log = logging.getLogger("monitor.pipeline")
        pipeline_log.addFilter(held)
        try:
            summary = poll_once(
                self.config, due_only=True, now=self.clock(), ruleset=self.ruleset, stop=self.stop,
                parser_pool=self.parser_pool,
            )
        finally:
            pipeline_log.removeFilter(held)
        if network_unreachable(summary):
            log.warning(self._unreachable_line(summary))
        else:
            for record in held.records:
                pipeline_log.handle(record)
            if summary.feeds:
                log.info(summary.line())
        if summary.new or summary.feeds:
            from monitor.service import check_alerts

            check_alerts(self.config, now=self.clock())
        return summary

    def _unreachable_line(self, summary: PollSummary) -> str:
        causes = ", ".join(f"{n} {cause}" for cause, n in summary.causes())
        when = ""
        try:
            from storage import open_store

            with open_store(self.config.store_target) as store:
                retry = store.next_due()
        except MonitorError:
            retry = None
        if retry is not None:
            minutes = max(1, round((retry - self.clock()).total_seconds() / 60))
            when = f" Retrying at {retry:%Y-%m-%d %H:%M} UTC (in {minutes} min)."
        return (
            f"The network looks unreachable: none of the {len(summary.feeds)} feeds could be reached "
            f"({causes}). Check this machine's connection or DNS.{when}"
        )

    def digests_due(self) -> list[str]:
        """Build every digest that is due and missing (catch-up included); retry failed deliveries."""
        from monitor.service import due_digest_days, make_digest, retry_deliveries

        with self.busy:
            self.reload_if_changed()
            if not self.leads():
                return []
            now = self.clock()
            built = []
            for day in due_digest_days(self.config, now=now):
                if self.stop.is_set():
                    break
                result = make_digest(self.config, day, now=now)
                built.append(day.isoformat())
                log.info("digest %s: %d items -> %s", day, result.items, ", ".join(str(p) for p in result.paths))
            retry_deliveries(self.config, now=now, skip=set(built))
            return built

    def scheduled_digest(self) -> None:
        """The daily digest job: the configured day (yesterday or today so far), rebuilt if it exists."""
        from monitor.service import digest_day_for, make_digest, retry_deliveries

        with self.busy:
            self.reload_if_changed()
            if not self.leads():
                return
            now = self.clock()
            day = digest_day_for(self.config, now)
            result = make_digest(self.config, day, now=now)
            log.info("digest %s: %d items -> %s", day, result.items, ", ".join(str(p) for p in result.paths))
            retry_deliveries(self.config, now=now, skip={day.isoformat()})

    def housekeeping(self) -> None:
        from monitor.service import housekeeping

        with self.busy:
            if not self.leads():
                return
            pruned = housekeeping(self.config, now=self.clock())
        log.info("housekeeping: pruned %d unflagged articles older than %d days", pruned, self.config.keep_days)

    def run_once(self) -> RoundResult:
        """`monitor run --once`: poll what is due, build what digest is due, exit."""
        try:
            summary = self._poll_through_workers() if self.config.queue is not None else self.poll_due()
            if not summary.feeds:
                log.info("no feeds due")
            result = RoundResult(summary, self.digests_due())
            # From cron there is no daily job: housekeeping (which bounds the fetch log) runs once a day here.
            from monitor.service import housekeeping_due

            if housekeeping_due(self.config, now=self.clock()):
                self.housekeeping()
            return result
        finally:
            self.close()

    def close(self) -> None:
        self.parser_pool.close()
        if self._queue is not None:
            self._queue.close()


# Causes that point at this machine's network rather than at a publisher.
NETWORK_CAUSES = frozenset({"connection refused", "host name not found (DNS)", "connection timed out"})


def network_unreachable(summary: PollSummary) -> bool:
    """Every feed of the round (two or more) failed to connect or resolve.

    One feed refusing is that server's problem, so a single-feed round never
    counts; a stopped or store-failed round neither."""
    if len(summary.feeds) < 2 or summary.interrupted or summary.store_error:
        return False
    causes = summary.causes()
    return sum(n for _, n in causes) == len(summary.feeds) and all(c in NETWORK_CAUSES for c, _ in causes)


class _HoldWarnings(logging.Filter):
    """Keeps a logger's WARNING records for later instead of letting them through."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING:
            self.records.append(record)
            return False
        return True


def add_jobs(scheduler: BaseScheduler, runner: Runner, *, now: datetime) -> None:
    """The three jobs. `now` decides the first runs, so tests need no sleeping."""
    tz = runner.config.digest.zone
    hour, minute = (int(x) for x in runner.config.digest.time.split(":"))
    common: dict[str, Any] = {"coalesce": True, "max_instances": 1, "replace_existing": True, "misfire_grace_time": 3600}
    # With a broker the tick only selects and enqueues, so it may come more often ([queue] tick).
    every = runner.config.queue.tick if runner.config.queue is not None else 60
    scheduler.add_job(
        runner.poll_due, IntervalTrigger(seconds=every, timezone=timezone.utc), id="poll", name="poll due feeds",
        next_run_time=now, **common,
    )
    scheduler.add_job(
        runner.scheduled_digest, CronTrigger(hour=hour, minute=minute, timezone=tz), id="digest",
        name="daily digest", **common,
    )
    scheduler.add_job(
        runner.housekeeping, CronTrigger(hour=(hour + 12) % 24, minute=minute, timezone=tz), id="housekeeping",
        name="housekeeping", **common,
    )


def _on_job_event(event: JobExecutionEvent) -> None:
    if event.code == EVENT_JOB_MISSED:
        log.warning("job %s missed its run at %s", event.job_id, event.scheduled_run_time)
        return
    exc = event.exception
    if isinstance(exc, MonitorError):
        log.error("job %s failed: %s", event.job_id, exc)
    else:
        # A bug: keep the traceback (APScheduler 3 hands it over already formatted).
        log.error("job %s failed: %s: %s\n%s", event.job_id, type(exc).__name__, exc, (event.traceback or "").rstrip())


def build_scheduler(runner: Runner, *, now: datetime) -> BlockingScheduler:
    scheduler = BlockingScheduler(timezone=timezone.utc, job_defaults={"coalesce": True, "max_instances": 1})
    add_jobs(scheduler, runner, now=now)
    # A failing job is logged with its cause; the scheduler carries on.
    scheduler.add_listener(_on_job_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    return scheduler


def run_forever(config_path: str | None) -> int:
    """Start the scheduler in the foreground until SIGINT/SIGTERM. Returns the exit code."""
    runner = Runner(config_path)
    scheduler = build_scheduler(runner, now=runner.clock())

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: finishing the feed being written, then stopping", signal.Signals(signum).name)
        runner.stop.set()
        if scheduler.running:
            scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "monitor running (pid %d): %d feeds, rules version %s, digest daily at %s %s; database %s",
        os.getpid(), len(runner.config.feeds), runner.ruleset.version, runner.config.digest.time,
        runner.config.digest.timezone, runner.config.store_label,
    )
    qs = runner.queue_scheduler()
    while qs is not None and not runner.stop.is_set() and not qs.is_leader():
        runner.stop.wait(min(qs.queue.tick, qs.queue.lock_timeout / 3))  # another scheduler holds the lock
    try:
        # Catch up first: digests missed while we were down. Overdue feeds are
        # polled by the poll job's first run, which is scheduled for now.
        runner.digests_due()
    except MonitorError as exc:
        log.error("catch-up failed: %s", exc)
    if not runner.stop.is_set():
        scheduler.start()
    # start() returns once shutdown() was called; wait for the job in
    # progress (a poll finishes the feed it is writing) before the last line.
    with runner.busy:
        runner.close()
        log.info("monitor stopped")
    return 0


__all__ = ["Runner", "add_jobs", "build_scheduler", "run_forever"]
