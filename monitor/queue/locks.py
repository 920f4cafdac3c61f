"""Redis locks and host leases shared by every worker and scheduler.

A lock is `SET key token NX PX ttl`; only the holder's token renews or
releases it (a Lua compare-and-act), so a holder that stalled past its ttl
cannot delete its successor's lock. A holder keeps its lock with a renewing
thread; when the holder dies the lock expires within `ttl`.

Host leases are a sorted set per host (member: a token, score: its expiry
in Redis's own clock, so machines' clocks need not agree): at most `limit`
live members, expired ones dropped on every acquire. A worker killed while
holding one loses it at its expiry, not never.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

log = logging.getLogger("monitor.queue")

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_LEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


class RedisLock:
    """One named lock; `value` says who holds it (shown to whoever waits for it)."""

    def __init__(self, client: redis.Redis, key: str, ttl: float, *, owner: str = ""):
        self.client = client
        self.key = key
        self.ttl_ms = max(1, int(ttl * 1000))
        self.token = f"{owner}#{secrets.token_hex(8)}" if owner else secrets.token_hex(8)

    def acquire(self) -> bool:
        return bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def renew(self) -> bool:
        return bool(self.client.eval(_RENEW, 1, self.key, self.token, self.ttl_ms))

    def ensure(self) -> bool:
        """Held after this call: renewed, or taken again (Redis restarted empty); False if another holds it."""
        return self.renew() or self.acquire()

    def release(self) -> bool:
        return bool(self.client.eval(_RELEASE, 1, self.key, self.token))

    def holder(self) -> str | None:
        value = self.client.get(self.key)
        if value is None:
            return None
        text = value.decode() if isinstance(value, bytes) else str(value)
        return text.rpartition("#")[0] or text

    @contextmanager
    def kept(self) -> Iterator[RedisLock]:
        """Renew every ttl/3 while the block runs; release at its end."""
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self.ttl_ms / 3000):
                try:
                    if not self.renew():
                        log.warning("lock %s was lost (expired while held)", self.key)
                except redis.RedisError:
                    pass  # the next renewal tries again; the ttl covers a short outage

        thread = threading.Thread(target=renew, daemon=True, name=f"renew {self.key}")
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            try:
                self.release()
            except redis.RedisError:
                pass  # it expires by itself


class HostLeases:
    """At most `limit` concurrent holders per host, cluster-wide."""

    PREFIX = "monitor:host:"

    def __init__(self, client: redis.Redis, limit: int, lease_seconds: float, wait_step: float = 0.05):
        self.client = client
        self.limit = limit
        self.lease_ms = max(1, int(lease_seconds * 1000))
        self.wait_step = wait_step

    @contextmanager
    def hold(self, host: str) -> Iterator[None]:
        key = self.PREFIX + host.lower()
        token = secrets.token_hex(8)
        while not self.client.eval(_LEASE, 1, key, self.limit, self.lease_ms, token):
            time.sleep(self.wait_step * (0.5 + secrets.randbelow(1000) / 1000))
        try:
            yield
        finally:
            try:
                self.client.zrem(key, token)
            except redis.RedisError:
                pass  # the lease expires by itself


def redis_client(url: str, **options: Any) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10, **options)
