"""Real servers for the queue tests: redis-server on a free loopback port, a threaded
feed server that counts concurrent requests, and `python -m monitor worker` processes.

No mocks: Redis is the Debian `redis-server` binary (or `MONITOR_TEST_REDIS_URL`),
workers are the CLI a user starts, feeds are served over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REDIS_BIN = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Any, timeout: float, what: str, step: float = 0.1) -> Any:
    """Poll a condition (waiting for a process to do something, not measuring time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class RedisServer:
    """A throwaway redis-server: no persistence, so a restart is an empty Redis (the harder case)."""

    def __init__(self, folder: Path, password: str | None = None):
        self.folder = folder
        self.port = free_port()
        self.password = password
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [REDIS_BIN, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)] + (["--requirepass", self.password] if self.password else []),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

        def up() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(64).startswith((b"+PONG", b"-NOAUTH"))
            except OSError:
                return False

        wait_until(up, 10, "redis-server to answer")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


def _own_redis(tmp_path: Path) -> Any:
    if not os.path.exists(REDIS_BIN):
        why = "redis-server is not installed (apt-get install redis-server, or set MONITOR_TEST_REDIS_URL)"
        if os.environ.get("CI"):
            pytest.fail(why)  # CI installs it (.ci/run): a missing server there is a broken run, not a skip
        pytest.skip(why)
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Any:
    """MONITOR_TEST_REDIS_URL (flushed) when set, else a redis-server of the test's own."""
    env_url = os.environ.get("MONITOR_TEST_REDIS_URL")
    if env_url:
        import redis

        redis.Redis.from_url(env_url).flushdb()
        yield _External(env_url)
        return
    yield from _own_redis(tmp_path)


@pytest.fixture
def own_redis_server(tmp_path: Path) -> Any:
    """Always a redis-server of the test's own: for the tests that stop and restart it."""
    yield from _own_redis(tmp_path)


class _External:
    """MONITOR_TEST_REDIS_URL: a server the tests cannot stop (the outage test uses own_redis_server)."""

    def __init__(self, url: str):
        self.url = url

    def start(self) -> None:
        pytest.skip("MONITOR_TEST_REDIS_URL is an external server: it cannot be stopped by the test")

    stop = start


class FeedServer:
    """Feeds by path on a threaded HTTP server; counts requests per path and the most at once."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}
        self.delays: dict[str, float] = {}
        self.requests: Counter[str] = Counter()
        self.active = 0
        self.most_active = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                with server._lock:
                    server.requests[self.path] += 1
                    server.active += 1
                    server.most_active = max(server.most_active, server.active)
                try:
                    time.sleep(server.delays.get(self.path, 0.0))
                    body = server.bodies.get(self.path)
                    self.send_response(200 if body is not None else 404)
                    self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                    self.send_header("Content-Length", str(len(body or b"")))
                    self.end_headers()
                    self.wfile.write(body or b"")
                finally:
                    with server._lock:
                        server.active -= 1

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def add(self, path: str, body: bytes, delay: float = 0.0) -> str:
        self.bodies[path] = body
        self.delays[path] = delay
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def feed_server() -> Any:
    server = FeedServer()
    yield server
    server.close()


class Worker:
    """One `python -m monitor worker` process (in its own process group, so kill -9 takes its children too)."""

    def __init__(self, cwd: Path, env: dict[str, str], name: str, concurrency: int = 1, threads: int = 0):
        self.log = cwd / f"{name}.log"
        how = ["--threads", str(threads)] if threads else ["--concurrency", str(concurrency)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "worker", *how],
            cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=self.log.open("wb"), start_new_session=True,
        )
        wait_until(lambda: "ready." in self.text() or self.proc.poll() is not None, 60, f"worker {name} to start")
        assert self.proc.poll() is None, self.text()

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def kill9(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill9()


def queue_config(redis_url: str, **keys: Any) -> str:
    """The [queue] table for a test config."""
    lines = ["[queue]", f'broker = "{redis_url}"']
    lines += [f"{k} = {v}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"
