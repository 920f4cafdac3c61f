"""kill -9 at random moments during a poll leaves an intact database, and nothing lost or doubled.

Many loopback feeds (pytest-httpserver), a real `python -m monitor poll`
subprocess killed with SIGKILL after a random delay, ten times; after each
kill `PRAGMA integrity_check` is ok; a last poll completes and every distinct
item is stored exactly once.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from feedgen import rss, write_config
from pytest_httpserver import HTTPServer

FEEDS, PER_FEED = 30, 40


@pytest.mark.slow
def test_kill_9_ten_times_then_everything_once(
    tmp_path: Path, httpserver: HTTPServer, subprocess_env: dict[str, str]
) -> None:
    urls = []
    for f in range(FEEDS):
        items = [
            {"title": f"Feed {f} story {i}", "link": f"https://wire.example/{f}/{i}", "text": f"feed {f} item {i} words"}
            for i in range(PER_FEED)
        ]
        httpserver.expect_request(f"/f{f}.xml").respond_with_data(rss(items), content_type="application/rss+xml")
        urls.append(httpserver.url_for(f"/f{f}.xml"))
    write_config(tmp_path, urls)
    db = tmp_path / "data" / "monitor.db"
    rng = random.Random(9)
    for _ in range(10):
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "poll"], cwd=tmp_path, env=subprocess_env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        # A random moment: start-up, mid-fetch or mid-write (this is when to kill, not a timing check).
        time.sleep(rng.uniform(0.3, 3.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        if db.exists():
            with sqlite3.connect(db) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "poll"], cwd=tmp_path, env=subprocess_env, capture_output=True, text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        urls_stored = [u for (u,) in conn.execute("SELECT url FROM articles")]
    expected = {f"https://wire.example/{f}/{i}" for f in range(FEEDS) for i in range(PER_FEED)}
    assert len(urls_stored) == len(set(urls_stored)) == len(expected)  # none doubled
    assert set(urls_stored) == expected  # none lost
