"""The digest use case: select a day, render it once, publish the files, deliver what was rendered.

Opens the store, calls the pure parts (select, render), writes (publish),
sends (monitor.delivery) and records what happened. Files are written
whatever happens to delivery; a failed delivery is recorded and retried by
the next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from core.errors import MonitorError
from monitor.config import Config
from monitor.delivery import NOTHING_CONFIGURED, deliver_digest, delivery_configured
from monitor.digest.publish import write_digest, write_index
from monitor.digest.render import render_all
from monitor.digest.select import digest_day_for, digest_item_ids, select_day
from monitor.settings import open_store
from monitor.trends import sparkline_svg

log = logging.getLogger("monitor")

__all__ = ["DigestResult", "digest_day_for", "due_digest_days", "make_digest", "retry_deliveries"]


@dataclass
class DigestResult:
    day: date
    items: int
    paths: list[Path] = field(default_factory=list)
    delivery_error: str | None = None
    delivered: bool = False
    # Why a delivery that was asked for was not attempted (nothing configured).
    delivery_skipped: str | None = None


def due_digest_days(config: Config, *, now: datetime) -> list[date]:
    """Digest days whose scheduled time has passed but that were never built.

    Looks back at most `[digest] catch_up_days` days, and never before
    monitoring began (the first feed added).
    """
    tz = config.digest.zone
    local = now.astimezone(tz)
    hour, minute = (int(x) for x in config.digest.time.split(":"))
    passed_today = (local.hour, local.minute) >= (hour, minute)
    latest = digest_day_for(config, now) - (timedelta(0) if passed_today else timedelta(days=1))
    with open_store(config, now=now) as store:
        began = store.first_activity()
        start = latest - timedelta(days=max(config.digest.catch_up_days, 1) - 1)
        if began is not None:
            start = max(start, began.astimezone(tz).date())
        days = []
        d = start
        while d <= latest:
            if store.digest(d.isoformat()) is None:
                days.append(d)
            d += timedelta(days=1)
    return days


def make_digest(
    config: Config,
    day: date,
    *,
    now: datetime,
    formats: tuple[str, ...] = ("md", "html", "json"),
    deliver: bool | None = None,
) -> DigestResult:
    """Build, write and (when configured and not yet done) deliver one day's digest.

    `deliver=None` delivers when a channel is configured and the day was not
    delivered yet; `True` delivers again (or says, in `delivery_skipped`,
    that nothing is configured); `False` never.
    """
    with open_store(config, now=now) as store:
        d = select_day(config, store, day, now=now)
        rendered = render_all(d, sparkline=lambda counts, spike: sparkline_svg(counts, spike=spike))
        try:
            paths = write_digest(d, config.digest_dir, formats, rendered=rendered)
            write_index(config.digest_dir, generated_at=now)
        except OSError as exc:
            # A full disk or a read-only folder: one clear line; files already there are untouched
            # (each is written to a temporary file and renamed into place).
            where = exc.filename or config.digest_dir
            raise MonitorError(f"{where}: cannot write the digest: {exc.strerror or exc}") from exc
        count = len(digest_item_ids(d))
        store.record_digest(day.isoformat(), generated_at=now, items=count, paths=[str(p) for p in paths])
        result = DigestResult(day, count, paths)
        record = store.digest(day.isoformat())
        already = bool(record and record["delivered_at"])
        if deliver and not delivery_configured(config):
            result.delivery_skipped = NOTHING_CONFIGURED
        if deliver is None:
            deliver = delivery_configured(config) and not already
        if deliver and delivery_configured(config):
            result.delivery_error = deliver_digest(config, day, rendered)
            result.delivered = result.delivery_error is None
            store.record_delivery(day.isoformat(), at=now, error=result.delivery_error)
    return result


def retry_deliveries(config: Config, *, now: datetime, skip: set[str]) -> None:
    """Deliver again the digests whose delivery failed (files already exist)."""
    if not delivery_configured(config):
        return
    with open_store(config, now=now) as store:
        pending = [r["day"] for r in store.undelivered_digests() if r["day"] not in skip]
    for day in pending:
        log.info("retrying delivery of the %s digest", day)
        make_digest(config, date.fromisoformat(day), now=now, deliver=True)
