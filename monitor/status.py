"""Status text: each feed's health and counts, the last digest, the next scheduled runs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from monitor.config import Config
from monitor.delivery import delivery_configured
from storage import Store


def feed_status(store: Store) -> list[dict[str, Any]]:
    """One dict per active feed, as `monitor status --json` prints it."""
    counts = store.feed_counts()
    warnings = store.last_warnings()
    return [
        {
            "url": f.url,
            "name": f.display_name,
            "source": f.source,
            "last_status": f.last_status,
            "http_status": f.http_status,
            "last_error": f.last_error,
            "last_warning": warnings.get(f.id),
            "error_count": f.error_count,
            "failing_since": f.failing_since,
            "disabled": f.disabled,
            "articles": counts.get(f.id, 0),
            "last_fetched": f.last_fetched,
            "last_ok": f.last_ok,
            "next_due": f.next_due,
        }
        for f in store.list_feeds()
    ]


def status_extras(config: Config, store: Store, *, now: datetime) -> list[str]:
    """Lines after the feed table: totals, the last digest, and the next scheduled runs."""
    c = store.counts()
    lines = [f"{c['articles']} articles stored, {c['flagged']} flagged. Database: {config.store_label}"]
    last = store.last_digest()
    if last is None:
        lines.append("Last digest: none yet.")
    else:
        if last["delivered_at"]:
            delivery = f"delivered {last['delivered_at']}"
        elif last["delivery_error"]:
            delivery = f"NOT delivered: {last['delivery_error']} (retried on the next run)"
        elif delivery_configured(config):
            delivery = "not delivered yet"
        else:
            delivery = "no delivery configured"
        lines.append(f"Last digest: {last['day']}, {last['items']} items, {delivery}.")
    status = next_runs(config, store, now=now)
    lines.append(
        "Next runs: poll " + (status["poll"] or "when a feed is added")
        + f"; digest {status['digest']}; housekeeping {status['housekeeping']}."
    )
    return lines


def next_runs(config: Config, store: Store, *, now: datetime) -> dict[str, str | None]:
    """When each scheduled job next fires (as `monitor run` would schedule them), in the digest time zone."""
    tz = config.digest.zone
    due = store.next_due()
    hour, minute = (int(x) for x in config.digest.time.split(":"))

    def next_daily(h: int) -> str:
        local = now.astimezone(tz)
        at = local.replace(hour=h, minute=minute, second=0, microsecond=0)
        if at <= local:
            at = (local + timedelta(days=1)).replace(hour=h, minute=minute, second=0, microsecond=0)
        return at.strftime("%Y-%m-%d %H:%M %Z")

    return {
        "poll": (max(due, now).astimezone(tz).strftime("%Y-%m-%d %H:%M %Z") if due else None),
        "digest": next_daily(hour),
        "housekeeping": next_daily((hour + 12) % 24),
    }
