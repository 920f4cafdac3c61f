"""The parts a use case builds from a Config: fetch settings, feed policy, and the opened store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import storage
from monitor.config import Config
from monitor.decide import Policy
from monitor.fetch import FetchSettings
from storage import Store


def fetch_settings(config: Config) -> FetchSettings:
    extra: dict[str, Any] = {}
    if config.user_agent:
        extra["user_agent"] = config.user_agent
    return FetchSettings(
        read_timeout=config.timeout,
        total_timeout=config.timeout,
        max_bytes=config.max_bytes,
        per_host=config.per_host,
        pool_size=config.concurrency,
        **extra,
    )


def policy(config: Config) -> Policy:
    return Policy(
        interval=config.interval, jitter=config.jitter, max_errors=config.max_errors, max_backoff=config.max_backoff
    )


def open_store(config: Config, *, now: datetime) -> Store:
    """Open the database for writing and bring the configured feeds into it."""
    store = storage.open_store(config.store_target)
    store.sync_configured_feeds(((f.url, f.name, f.interval) for f in config.feeds), now=now)
    store.set_feed_options((f.url, f.full_text, f.category) for f in config.feeds)
    return store
