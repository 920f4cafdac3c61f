"""Decide what a fetch means for a feed: its next state and when to poll it next.

Pure: no I/O, no clock (now is a parameter), no randomness but a jitter that
is a stable function of the feed and the time. The policy, in one place:

- 200 (parsed) and 304: healthy; errors cleared; next poll after the
  feed's interval, give or take the jitter.
- 429 / 503 with Retry-After: the publisher asked us to wait; we wait at
  least that long, and it does not count as an error.
- 410 Gone: the feed is disabled until `monitor feeds reset`.
- Anything else (HTTP error, timeout, not a feed): one more error; the next
  poll backs off exponentially (interval x 2^(errors-1), capped); past
  `max_errors` in a row the feed is paused until `monitor feeds reset`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Policy:
    interval: int = 1800  # seconds
    jitter: float = 0.1  # fraction of the interval, either way
    max_errors: int = 10
    max_backoff: int = 86400


@dataclass(frozen=True)
class Decision:
    status: str  # ok | not_modified | error | throttled | gone | paused
    error_count: int
    next_due: datetime
    disabled: str | None


def jittered(url: str, now: datetime, seconds: float, jitter: float) -> timedelta:
    """`seconds` stretched or shrunk by up to `jitter`, stably for this feed and time.

    Spreads feeds that share an interval so they do not all fall due in the
    same minute, without making tests depend on a random generator.
    """
    if jitter <= 0:
        return timedelta(seconds=seconds)
    h = hashlib.blake2b(f"{url}|{now.isoformat()}".encode(), digest_size=8).digest()
    fraction = int.from_bytes(h, "big") / 2**64  # [0, 1)
    return timedelta(seconds=seconds * (1 + jitter * (2 * fraction - 1)))


def decide(
    *,
    url: str,
    outcome: str,
    previous_errors: int,
    now: datetime,
    policy: Policy,
    interval: int | None = None,
    retry_after: float | None = None,
) -> Decision:
    """`outcome` is one of ok | not_modified | error | throttled | gone."""
    every = interval or policy.interval
    if outcome in ("ok", "not_modified"):
        return Decision(outcome, 0, now + jittered(url, now, every, policy.jitter), None)
    if outcome == "gone":
        return Decision("gone", previous_errors + 1, now + timedelta(seconds=policy.max_backoff), "gone")
    if outcome == "throttled" and retry_after is not None:
        wait = max(float(retry_after), float(every))
        return Decision("throttled", previous_errors, now + timedelta(seconds=min(wait, 7 * 86400)), None)
    errors = previous_errors + 1
    if errors >= policy.max_errors:
        return Decision("paused", errors, now + timedelta(seconds=policy.max_backoff), "paused")
    backoff = min(every * 2 ** (errors - 1), policy.max_backoff)
    if retry_after is not None:
        backoff = max(backoff, min(float(retry_after), 7 * 86400))
    return Decision("error", errors, now + jittered(url, now, backoff, policy.jitter), None)
