"""The feed policy: healthy, throttled, gone, backoff and pause. Pure, so no server needed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from monitor.decide import Policy, decide, jittered

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
P = Policy(interval=600, jitter=0.0, max_errors=5, max_backoff=3600)


def test_ok_clears_errors_and_waits_one_interval() -> None:
    d = decide(url="u", outcome="ok", previous_errors=3, now=NOW, policy=P)
    assert (d.status, d.error_count, d.next_due, d.disabled) == ("ok", 0, NOW + timedelta(minutes=10), None)


def test_per_feed_interval_wins() -> None:
    d = decide(url="u", outcome="not_modified", previous_errors=0, now=NOW, policy=P, interval=60)
    assert d.next_due == NOW + timedelta(minutes=1)


@pytest.mark.parametrize("errors_before,wait", [(0, 600), (1, 1200), (2, 2400), (3, 3600)])
def test_errors_back_off_exponentially_capped(errors_before: int, wait: int) -> None:
    d = decide(url="u", outcome="error", previous_errors=errors_before, now=NOW, policy=P)
    assert d.status == "error" and d.error_count == errors_before + 1
    assert d.next_due == NOW + timedelta(seconds=wait)


def test_past_the_limit_the_feed_is_paused() -> None:
    d = decide(url="u", outcome="error", previous_errors=4, now=NOW, policy=P)
    assert (d.status, d.disabled, d.error_count) == ("paused", "paused", 5)


def test_gone_disables() -> None:
    d = decide(url="u", outcome="gone", previous_errors=0, now=NOW, policy=P)
    assert (d.status, d.disabled) == ("gone", "gone")


def test_retry_after_is_honoured_without_counting_an_error() -> None:
    d = decide(url="u", outcome="throttled", previous_errors=2, now=NOW, policy=P, retry_after=7200)
    assert (d.status, d.error_count, d.disabled) == ("throttled", 2, None)
    assert d.next_due == NOW + timedelta(hours=2)
    short = decide(url="u", outcome="throttled", previous_errors=0, now=NOW, policy=P, retry_after=5)
    assert short.next_due == NOW + timedelta(minutes=10)  # never sooner than the normal interval


def test_jitter_stays_within_bounds_and_is_stable() -> None:
    values = {jittered(f"https://feed/{i}", NOW, 1000, 0.1).total_seconds() for i in range(200)}
    assert all(900 <= v <= 1100 for v in values)
    assert len(values) > 100  # it really spreads feeds out
    assert jittered("https://feed/1", NOW, 1000, 0.1) == jittered("https://feed/1", NOW, 1000, 0.1)
