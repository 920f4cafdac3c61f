"""Read-only commands do not write: they run beside `monitor run` and must not take the write lock.

Before, every command synced the configured feeds into the database first,
so `monitor status` beside a poll wrote (and could meet a locked database).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from feedgen import rss, write_config
from storage import Store

READ_ONLY = [
    ["status"],
    ["status", "--json"],
    ["search", "OpenAI"],
    ["stories", "--all"],
    ["trends"],
    ["rules", "explain", "1"],
]


def snapshot(db: Path) -> tuple[str, ...]:
    return tuple(
        hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else "absent"
        for p in (db, db.with_name(db.name + "-wal"))
    )


@pytest.mark.parametrize("args", READ_ONLY, ids=[" ".join(a) for a in READ_ONLY])
def test_a_read_only_command_leaves_the_database_untouched(
    args: list[str], httpserver: HTTPServer, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    item = {"title": "OpenAI weighs an IPO", "link": "https://wire.example/ipo", "text": "OpenAI and an IPO."}
    httpserver.expect_request("/f").respond_with_data(rss([item]), content_type="application/rss+xml")
    write_config(tmp_path, [httpserver.url_for("/f")])

    def monitor(*a: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "monitor", *a], cwd=tmp_path, env=subprocess_env,
                              capture_output=True, text=True, timeout=60)

    assert monitor("poll").returncode == 0
    # A feed added to the config since: a writing command would sync it in.
    write_config(tmp_path, [httpserver.url_for("/f"), "http://127.0.0.1:9/new.xml"])
    db = tmp_path / "data" / "monitor.db"
    before = snapshot(db)
    proc = monitor(*args)
    assert proc.returncode == 0, proc.stderr
    assert snapshot(db) == before
    with Store(db) as store:
        assert [f.url for f in store.list_feeds()] == [httpserver.url_for("/f")]
