"""Commands run side by side against one database: real processes, a real SQLite file, loopback HTTP.

`monitor run` polls every few seconds while `monitor poll`, `monitor rules
backtest --apply` and `monitor digest` run over and over beside it. Before
every write transaction began with BEGIN IMMEDIATE, one of them failed with
"database is locked" within about a second: a transaction that read first
could not wait for the lock under WAL. Now none may.

MONITOR_CONCURRENCY_SECONDS sets how long the commands run (default 30;
the issue's full minute: 60). Marked slow: `-m "not slow"` skips it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from feedgen import rss, write_config
from storage import Store

pytestmark = pytest.mark.slow

SECONDS = float(os.environ.get("MONITOR_CONCURRENCY_SECONDS", "30"))


def test_four_commands_at_once_never_meet_a_locked_database(
    httpserver: HTTPServer, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    served = {"n": 0}
    lock = threading.Lock()

    def feed(request: Request) -> Response:
        # Every fetch brings new items, so every poll writes.
        with lock:
            served["n"] += 1
            n = served["n"]
        items = [{"title": f"OpenAI weighs an IPO, take {n}-{i}", "link": f"https://wire.example/{n}/{i}",
                  "text": "Bankers say OpenAI could file for an initial public offering on Azure exclusive terms."}
                 for i in range(5)]
        return Response(rss(items), headers={"Content-Type": "application/rss+xml"})

    for k in range(4):
        httpserver.expect_request(f"/f{k}").respond_with_handler(feed)
    write_config(tmp_path, [httpserver.url_for(f"/f{k}") for k in range(4)],
                 extra="")
    cfg = tmp_path / "monitor.toml"
    cfg.write_text(cfg.read_text().replace("[schedule]\n", "[schedule]\ninterval = \"1s\"\n"))

    def start(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "monitor", *args], cwd=tmp_path, env=subprocess_env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    runner = start("run")
    failures: list[str] = []
    runs = {"poll": 0, "backtest": 0, "digest": 0}

    def loop(name: str, args: list[str]) -> None:
        deadline = time.monotonic() + SECONDS
        while time.monotonic() < deadline:
            proc = start(*args)
            out, err = proc.communicate(timeout=120)
            runs[name] += 1
            if proc.returncode != 0 or "locked" in err:
                failures.append(f"{name} exit {proc.returncode}: {err.strip()[-300:]}")

    threads = [threading.Thread(target=loop, args=(name, args)) for name, args in (
        ("poll", ["poll"]), ("backtest", ["rules", "backtest", "--apply"]), ("digest", ["digest"]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    runner.send_signal(signal.SIGTERM)
    _, run_err = runner.communicate(timeout=60)
    assert "locked" not in run_err, run_err[-2000:]
    assert failures == []
    assert min(runs.values()) >= 2, runs  # each command really ran beside the others
    with Store(tmp_path / "data" / "monitor.db") as store:
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored, distinct = store.db.execute("SELECT count(*), count(DISTINCT url) FROM articles").fetchone()
    # Nothing doubled; a poll SIGTERM stopped mid-way may have fetched what it did not store.
    assert 0 < stored == distinct <= 5 * served["n"]
