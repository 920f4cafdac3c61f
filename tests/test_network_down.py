"""When every feed fails to connect, `monitor run` says once that the network looks down.

Feeds point at closed loopback ports (a real refused connection); the real
CLI runs in a subprocess, and its log is read as an operator would read it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from feedgen import rss, write_config
from pytest_httpserver import HTTPServer

from monitor.pipeline import FeedReport, PollSummary
from monitor.scheduler import network_unreachable


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dead_feeds(n: int) -> list[str]:
    return [f"http://127.0.0.1:{closed_port()}/feed{i}.xml" for i in range(n)]


def test_run_once_says_it_once(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    write_config(tmp_path, dead_feeds(5))
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--once"], cwd=tmp_path, env=subprocess_env,
        capture_output=True, text=True, timeout=120,
    )
    lines = proc.stderr.splitlines()
    said = [line for line in lines if "network looks unreachable" in line]
    assert len(said) == 1, proc.stderr
    assert "none of the 5 feeds could be reached (5 connection refused)" in said[0]
    assert "Retrying at " in said[0] and " UTC (in " in said[0]
    # ... instead of one warning per feed.
    assert not [line for line in lines if "WARNING" in line and "feed" in line and line not in said], proc.stderr


def test_a_real_run_says_it_once_then_keeps_running(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    write_config(tmp_path, dead_feeds(4))
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run"], cwd=tmp_path, env=subprocess_env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "network looks unreachable" in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert seen.wait(90), "".join(lines)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(60)
        reader.join(10)
    assert proc.returncode == 0
    assert sum("network looks unreachable" in line for line in lines) == 1
    assert not [line for line in lines if "connection refused" in line and "unreachable" not in line], "".join(lines)


def test_one_feed_answering_means_the_network_is_up(
    tmp_path: Path, httpserver: HTTPServer, subprocess_env: dict[str, str]
) -> None:
    httpserver.expect_request("/ok.xml").respond_with_data(
        rss([{"title": "One", "link": "https://wire.example/1"}]), content_type="application/rss+xml"
    )
    write_config(tmp_path, dead_feeds(3) + [httpserver.url_for("/ok.xml")])
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--once"], cwd=tmp_path, env=subprocess_env,
        capture_output=True, text=True, timeout=120,
    )
    assert "unreachable" not in proc.stderr
    # Each failing feed's own warning is still there, after the round.
    assert sum("connection refused" in line and "WARNING" in line for line in proc.stderr.splitlines()) == 3


def report(status: str, error: str | None) -> FeedReport:
    return FeedReport(url="u", name="n", status=status, error=error)


def test_network_unreachable_decision() -> None:
    refused, dns = report("error", "connection refused"), report("error", "host name not found (DNS)")
    assert network_unreachable(PollSummary(feeds=[refused, dns]))
    assert not network_unreachable(PollSummary(feeds=[refused]))  # one server down is that server's problem
    assert not network_unreachable(PollSummary(feeds=[refused, report("error", "HTTP 404 Not Found")]))
    assert not network_unreachable(PollSummary(feeds=[refused, report("ok", None)]))
    assert not network_unreachable(PollSummary(feeds=[refused, dns], interrupted=True))
