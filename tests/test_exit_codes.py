"""`monitor poll` tells the truth in its exit code and its summary.

Real feed server (pytest-httpserver), a closed loopback port for refused
connections, and for the full disk a real OS limit: the poll subprocess runs
under RLIMIT_FSIZE, so SQLite's writes beyond that size really fail (EFBIG),
as they would on a full disk. Python ignores SIGXFSZ, so the write returns an
error instead of killing the process.
"""

from __future__ import annotations

import resource
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from feedgen import rss, write_config
from pytest_httpserver import HTTPServer

from monitor.pipeline import failure_cause


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def poll(env: dict[str, str], cwd: Path, file_limit: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if file_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    return subprocess.run(
        [sys.executable, "-m", "monitor", "poll"], cwd=cwd, env={**env, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True, text=True, timeout=180, preexec_fn=limit,
    )


def items(prefix: str, n: int, words: int = 40) -> list[dict[str, str]]:
    body = " ".join(f"word{i}" for i in range(words))
    return [
        {"title": f"{prefix} story {i}", "link": f"https://wire.example/{prefix}/{i}", "text": f"{prefix} {i} {body}"}
        for i in range(n)
    ]


@pytest.mark.parametrize(
    "status,error,cause",
    [
        ("error", "connection refused", "connection refused"),
        ("error", "HTTP 404 Not Found", "HTTP 404"),
        ("error", "HTTP 503 Service Unavailable (retry after 60 s)", "HTTP 503"),
        ("gone", "HTTP 410 Gone: the publisher removed this feed", "HTTP 410 Gone"),
        ("error", "host name not found (DNS)", "host name not found (DNS)"),
        ("error", "not a feed: the URL returned an HTML page", "not a feed"),
        ("error", "no answer within 5 s (read timed out)", "too slow"),
        ("storage_error", "x.db: cannot write: disk I/O error", "not stored"),
    ],
)
def test_failure_causes(status: str, error: str, cause: str) -> None:
    assert failure_cause(status, error) == cause


def test_summary_groups_failures_by_cause(tmp_path: Path, httpserver: HTTPServer, subprocess_env: dict[str, str]) -> None:
    httpserver.expect_request("/good.xml").respond_with_data(rss(items("good", 2)), content_type="application/rss+xml")
    httpserver.expect_request("/page.html").respond_with_data(
        "<!doctype html><html><body>hello</body></html>", content_type="text/html"
    )
    for name in ("gone1", "gone2"):
        httpserver.expect_request(f"/{name}.xml").respond_with_data("no", status=404)
    dead = [f"http://127.0.0.1:{closed_port()}/feed{i}.xml" for i in range(3)]
    feeds = [httpserver.url_for(p) for p in ("/good.xml", "/page.html", "/gone1.xml", "/gone2.xml")] + dead
    write_config(tmp_path, feeds)
    proc = poll(subprocess_env, tmp_path)
    assert proc.returncode == 0, proc.stderr  # feeds' own failures: recorded on their rows, not the run's
    assert proc.stdout.splitlines()[0] == (
        "polled 7 feeds: 1 ok, 0 not modified, 6 failed (3 connection refused, 2 HTTP 404, 1 not a feed); "
        "2 new articles, 0 flagged"
    )


def test_every_feed_failing_exits_1(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    write_config(tmp_path, [f"http://127.0.0.1:{closed_port()}/feed.xml"])
    proc = poll(subprocess_env, tmp_path)
    assert proc.returncode == 1
    assert "1 failed (1 connection refused)" in proc.stdout


def test_a_store_that_cannot_be_written_exits_3_and_loses_nothing(
    tmp_path: Path, httpserver: HTTPServer, subprocess_env: dict[str, str]
) -> None:
    httpserver.expect_request("/first.xml").respond_with_data(rss(items("first", 3)), content_type="application/rss+xml")
    for i in range(6):
        httpserver.expect_request(f"/big{i}.xml").respond_with_data(
            rss(items(f"big{i}", 60, words=400)), content_type="application/rss+xml"
        )
    first = httpserver.url_for("/first.xml")
    write_config(tmp_path, [first])
    assert poll(subprocess_env, tmp_path).returncode == 0
    db = tmp_path / "data" / "monitor.db"
    largest = max(p.stat().st_size for p in db.parent.glob("monitor.db*"))

    write_config(tmp_path, [first] + [httpserver.url_for(f"/big{i}.xml") for i in range(6)])
    full = poll(subprocess_env, tmp_path, file_limit=largest + 32_000)
    assert full.returncode == 3, (full.stdout, full.stderr)
    out = full.stdout + full.stderr
    assert "NOT STORED" in out and "cannot write" in out
    assert "Traceback" not in full.stderr

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] >= 3  # the first poll's articles kept

    again = poll(subprocess_env, tmp_path)
    assert again.returncode == 0, again.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] == 3 + 6 * 60
