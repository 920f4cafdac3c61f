"""`monitor run`: jobs and triggers (clock injected, no sleeping), run --once, catch-up,
hot reload, and SIGTERM during a poll in a real subprocess."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pytest_httpserver import HTTPServer

from feedgen import RULES, rss, write_config
from monitor.scheduler import Runner, build_scheduler
from monitor.service import open_store
from monitor.config import load_config

IPO = {"title": "OpenAI weighs an IPO", "link": "https://wire.example/ipo", "text": "OpenAI may file for an initial public offering."}


class Clock:
    def __init__(self, t: datetime):
        self.t = t

    def __call__(self) -> datetime:
        return self.t


def test_three_jobs_with_ids_triggers_and_no_overlap(tmp_path: Path) -> None:
    path = write_config(tmp_path, [], '[digest]\ntime = "06:30"\ntimezone = "Europe/Berlin"\n')
    now = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    runner = Runner(str(path), clock=Clock(now))
    scheduler = build_scheduler(runner, now=now)
    jobs = {j.id: j for j in scheduler.get_jobs()}
    assert set(jobs) == {"poll", "digest", "housekeeping"}
    for job in jobs.values():
        assert job.coalesce is True and job.max_instances == 1
    assert jobs["poll"].trigger.interval == timedelta(minutes=1)
    berlin = ZoneInfo("Europe/Berlin")
    nxt = jobs["digest"].trigger.get_next_fire_time(None, now)
    assert nxt == datetime(2026, 11, 21, 6, 30, tzinfo=berlin)
    assert jobs["housekeeping"].trigger.get_next_fire_time(None, now) == datetime(2026, 11, 20, 18, 30, tzinfo=berlin)


def test_run_once_polls_due_feeds_and_builds_the_due_digest(
    httpserver: HTTPServer, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    from email.utils import format_datetime

    fresh = dict(IPO, date=format_datetime(datetime.now(timezone.utc) - timedelta(seconds=5)))
    httpserver.expect_request("/f").respond_with_data(rss([fresh]), content_type="application/rss+xml")
    write_config(tmp_path, [httpserver.url_for("/f")], '[digest]\ntime = "00:00"\nday = "today"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--once"], cwd=tmp_path, env=subprocess_env,
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "polled 1 feeds: 1 ok" in proc.stdout
    today = datetime.now(timezone.utc).date().isoformat()
    assert f"digest built for {today}" in proc.stdout
    digest = json.loads((tmp_path / "data" / "digests" / f"{today}.json").read_text())
    assert [i["url"] for i in digest["items"]] == [IPO["link"]]
    # A second run: nothing due, nothing rebuilt.
    again = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--once"], cwd=tmp_path, env=subprocess_env,
        capture_output=True, text=True, timeout=120,
    )
    assert "polled 0 feeds" in again.stdout and "digest built" not in again.stdout


def test_catch_up_builds_missed_digests_once(tmp_path: Path) -> None:
    path = write_config(tmp_path, [], '[digest]\ntime = "07:00"\ncatch_up_days = 3\n')
    cfg = load_config(path)
    began = datetime(2026, 11, 10, 9, 0, tzinfo=timezone.utc)
    with open_store(cfg, now=began) as store:
        store.add_feed("http://127.0.0.1:9/feed", now=began)
    clock = Clock(datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc))  # after 07:00: the 19th is due
    runner = Runner(str(path), clock=clock)
    assert runner.digests_due() == ["2026-11-17", "2026-11-18", "2026-11-19"]
    assert runner.digests_due() == []
    clock.t = datetime(2026, 11, 21, 6, 0, tzinfo=timezone.utc)  # before 07:00: the 20th not yet
    assert runner.digests_due() == []
    clock.t = datetime(2026, 11, 21, 7, 0, tzinfo=timezone.utc)
    assert runner.digests_due() == ["2026-11-20"]
    assert sorted(p.name for p in (tmp_path / "data" / "digests").glob("2026-*.md")) == [
        "2026-11-17.md", "2026-11-18.md", "2026-11-19.md", "2026-11-20.md"
    ]


def test_catch_up_never_goes_back_before_monitoring_began(tmp_path: Path) -> None:
    path = write_config(tmp_path, [], '[digest]\ntime = "07:00"\ncatch_up_days = 5\n')
    cfg = load_config(path)
    began = datetime(2026, 11, 19, 9, 0, tzinfo=timezone.utc)
    with open_store(cfg, now=began) as store:
        store.add_feed("http://127.0.0.1:9/feed", now=began)
    runner = Runner(str(path), clock=Clock(datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)))
    assert runner.digests_due() == ["2026-11-19"]


def test_rules_are_reloaded_when_edited_and_a_bad_edit_keeps_the_last_good(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_config(tmp_path, [])
    runner = Runner(str(path), clock=Clock(datetime(2026, 11, 20, tzinfo=timezone.utc)))
    first = runner.ruleset.version
    sample = {"title": "OpenAI plans an IPO", "text": ""}
    before = runner.ruleset.evaluate(sample).score
    rules_file = tmp_path / "rules.toml"

    def edit(text: str, bump: int) -> None:
        rules_file.write_text(text)
        st = rules_file.stat()
        os.utime(rules_file, (st.st_atime, st.st_mtime + bump))

    edit(RULES.replace("weight = 3.0", "weight = 4.0"), 10)
    runner.reload_if_changed()
    second = runner.ruleset.version
    assert second != first
    assert before > 0
    assert runner.ruleset.evaluate(sample).score == pytest.approx(before * 4.0 / 3.0)
    caplog.set_level(logging.ERROR)
    edit(RULES.replace("@openai NEAR/12", "@opnai NEAR/12"), 20)
    runner.reload_if_changed()
    assert runner.ruleset.version == second
    assert "opnai" in caplog.text and "keeping the last good rules" in caplog.text


def test_a_bad_config_edit_keeps_the_last_good_config(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_config(tmp_path, [])
    path.write_text(path.read_text().replace("jitter = 0", 'jitter = 0\ninterval = "10m"'))
    runner = Runner(str(path), clock=Clock(datetime(2026, 11, 20, tzinfo=timezone.utc)))
    text = path.read_text().replace('interval = "10m"', 'interval = "often"')
    path.write_text(text)
    os.utime(path, (time.time(), time.time() + 30))
    caplog.set_level(logging.ERROR)
    runner.reload_if_changed()
    assert runner.config.interval == 600
    assert "schedule.interval" in caplog.text
    path.write_text(text.replace('"often"', '"20m"'))
    os.utime(path, (time.time(), time.time() + 60))
    runner.reload_if_changed()
    assert runner.config.interval == 1200


class SlowFeeds(BaseHTTPRequestHandler):
    """Each feed answers after a pause, so a poll is still running when SIGTERM arrives."""

    delay = 0.4

    def do_GET(self) -> None:  # noqa: N802
        time.sleep(self.delay)
        n = self.path.strip("/").split(".")[0]
        body = rss([{"title": f"Story {n}-{i}", "link": f"https://slow.example/{n}/{i}", "text": "words"} for i in range(20)])
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["SIGTERM", "SIGINT", "SIGKILL"])
def test_a_signal_during_a_poll_leaves_a_consistent_database(
    tmp_path: Path, subprocess_env: dict[str, str], sig: signal.Signals
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowFeeds)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        feeds = [f"http://127.0.0.1:{port}/{i}.xml" for i in range(40)]
        write_config(tmp_path, feeds, '[digest]\ntime = "23:59"\n')
        cfg_text = (tmp_path / "monitor.toml").read_text().replace("timeout = 5", "timeout = 5\nconcurrency = 2")
        (tmp_path / "monitor.toml").write_text(cfg_text)
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run"], cwd=tmp_path, env=subprocess_env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        db = tmp_path / "data" / "monitor.db"
        deadline = time.monotonic() + 60
        stored = 0
        while time.monotonic() < deadline and stored < 2:
            time.sleep(0.2)
            if db.exists():
                try:
                    with sqlite3.connect(db) as conn:
                        stored = conn.execute("SELECT count(*) FROM feeds WHERE last_fetched IS NOT NULL").fetchone()[0]
                except sqlite3.OperationalError:
                    pass
        assert stored >= 2, "the poll never got going"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        if sig == signal.SIGKILL:
            assert proc.returncode == -signal.SIGKILL  # no goodbye, but nothing half-written either
        else:
            assert proc.returncode == 0, err
            assert f"received {sig.name}" in err and err.strip().splitlines()[-1].endswith("monitor stopped")
            assert "Traceback" not in err
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            polled = conn.execute("SELECT count(*) FROM feeds WHERE last_fetched IS NOT NULL").fetchone()[0]
            assert 2 <= polled < 40  # it stopped part-way...
            # ...and every feed is either wholly stored (all 20 entries) or untouched.
            per_feed = conn.execute(
                "SELECT f.last_fetched IS NOT NULL, count(e.guid) FROM feeds f "
                "LEFT JOIN entries e ON e.feed_id = f.id GROUP BY f.id"
            ).fetchall()
            assert all((done and n == 20) or (not done and n == 0) for done, n in per_feed), per_feed
        # Started again, it carries on: the feeds not yet polled are due and get stored.
        again = subprocess.run(
            [sys.executable, "-m", "monitor", "run", "--once"], cwd=tmp_path, env=subprocess_env,
            capture_output=True, text=True, timeout=120,
        )
        assert again.returncode == 0, again.stderr
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM feeds WHERE last_fetched IS NULL").fetchone()[0] == 0
            assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] == 40 * 20
    finally:
        server.shutdown()
