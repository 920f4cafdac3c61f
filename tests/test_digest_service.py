"""Digests built from the store: files, delivery with retry, status, and the CLI command."""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import subprocess
import sys
import threading
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_ERROR
from apscheduler.schedulers.background import BackgroundScheduler
from feedgen import rss, write_config
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from core.errors import MonitorError
from monitor.config import load_config
from monitor.digest import publish
from monitor.scheduler import _on_job_event
from monitor.service import (
    make_digest,
    open_store,
    poll_once,
    retry_deliveries,
    status_extras,
)

DAY = date(2026, 11, 19)
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
IPO = {"title": "OpenAI weighs an IPO", "link": "https://wire.example/ipo", "text": "OpenAI could file for an initial public offering."}
LATE = {
    "title": "Azure exclusivity, late edition",
    "link": "https://wire.example/late",
    "text": "Microsoft keeps Azure as the exclusive cloud for OpenAI.",
    "date": "Thu, 19 Nov 2026 23:30:00 +0000",  # the 20th in Berlin
}


def stored(httpserver: HTTPServer, tmp_path: Path, extra: str = "") -> Path:
    httpserver.expect_request("/f").respond_with_data(rss([IPO, LATE]), content_type="application/rss+xml")
    path = write_config(tmp_path, [httpserver.url_for("/f")], extra)
    poll_once(load_config(path), now=NOW)
    return path


def test_digest_files_follow_the_digest_time_zone(httpserver: HTTPServer, tmp_path: Path) -> None:
    cfg = load_config(stored(httpserver, tmp_path, '[digest]\ntimezone = "Europe/Berlin"\n'))
    utc_day = make_digest(cfg, DAY, now=NOW)
    assert [p.name for p in utc_day.paths] == ["2026-11-19.md", "2026-11-19.html", "2026-11-19.json"]
    doc = json.loads((cfg.digest_dir / "2026-11-19.json").read_text())
    assert [i["url"] for i in doc["items"]] == [IPO["link"]]  # 23:30 UTC is already the 20th in Berlin
    make_digest(cfg, DAY + timedelta(days=1), now=NOW)
    nxt = json.loads((cfg.digest_dir / "2026-11-20.json").read_text())
    assert [i["url"] for i in nxt["items"]] == [LATE["link"]]
    assert (cfg.digest_dir / "index.html").exists() and (cfg.digest_dir / "feed.xml").exists()
    # Building a day twice from the same data gives the same files.
    before = (cfg.digest_dir / "2026-11-19.md").read_bytes()
    make_digest(cfg, DAY, now=NOW)
    assert (cfg.digest_dir / "2026-11-19.md").read_bytes() == before


def test_failed_delivery_is_recorded_shown_and_retried(httpserver: HTTPServer, tmp_path: Path) -> None:
    calls: list[dict] = []
    state = {"fail": True}

    def hook(request: Request) -> Response:
        calls.append(json.loads(request.data))
        return Response("down", status=500) if state["fail"] else Response("ok")

    httpserver.expect_request("/hook", method="POST").respond_with_handler(hook)
    cfg = load_config(stored(httpserver, tmp_path, f'[digest.webhook]\nurl = "{httpserver.url_for("/hook")}"\n'))
    result = make_digest(cfg, DAY, now=NOW)
    assert result.delivery_error and "HTTP 500" in result.delivery_error
    assert all(p.exists() for p in result.paths)  # files are written regardless
    with open_store(cfg, now=NOW) as store:
        lines = status_extras(cfg, store, now=NOW)
    assert any("Last digest: 2026-11-19, 2 items, NOT delivered" in line for line in lines)
    assert any(line.startswith("Next runs: poll ") for line in lines)

    state["fail"] = False
    retry_deliveries(cfg, now=NOW + timedelta(hours=1), skip=set())
    assert len(calls) == 2 and calls[1]["date"] == "2026-11-19"
    with open_store(cfg, now=NOW) as store:
        assert "delivered 2026-11-20T09:00:00+00:00" in " ".join(status_extras(cfg, store, now=NOW))
    # Once delivered, a rebuild does not send again, and there is nothing to retry.
    make_digest(cfg, DAY, now=NOW + timedelta(hours=2))
    retry_deliveries(cfg, now=NOW + timedelta(hours=2), skip=set())
    assert len(calls) == 2


def test_digest_command_prints_paths_and_says_when_a_day_is_empty(
    httpserver: HTTPServer, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    stored(httpserver, tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "digest", "--date", "2026-11-19", "--format", "md,json"],
        cwd=tmp_path, env=subprocess_env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    printed = proc.stdout.split()
    assert [Path(p).name for p in printed] == ["2026-11-19.md", "2026-11-19.json", "index.html", "feed.xml"]
    assert all(Path(p).exists() for p in printed)
    empty = subprocess.run(
        [sys.executable, "-m", "monitor", "digest", "--date", "2026-01-01"],
        cwd=tmp_path, env=subprocess_env, capture_output=True, text=True, timeout=60,
    )
    assert empty.returncode == 0 and "No flagged articles on 2026-01-01." in empty.stderr
    assert "No flagged articles on 2026-01-01." in (tmp_path / "data" / "digests" / "2026-01-01.md").read_text()


def test_a_failing_job_is_logged_and_the_scheduler_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    ran = threading.Event()
    runs = {"n": 0}

    def flaky() -> None:
        runs["n"] += 1
        if runs["n"] == 1:
            raise RuntimeError("boom in the job")
        ran.set()

    scheduler = BackgroundScheduler(timezone=timezone.utc)
    scheduler.add_listener(_on_job_event, EVENT_JOB_ERROR)
    scheduler.start()
    try:
        scheduler.add_job(flaky, "interval", seconds=0.05, id="poll", next_run_time=datetime.now(timezone.utc))
        assert ran.wait(10), "the job never ran again after failing once"
    finally:
        scheduler.shutdown(wait=True)
    assert "job poll failed: RuntimeError: boom in the job" in caplog.text
    assert "Traceback" in caplog.text  # a bug keeps its traceback in the log


def test_a_full_disk_while_writing_a_digest_is_one_clear_error_and_keeps_old_files(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = load_config(stored(httpserver, tmp_path))
    make_digest(cfg, DAY, now=NOW)
    before = (cfg.digest_dir / "2026-11-19.md").read_bytes()

    def disk_full(src: str, dst: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", dst)

    monkeypatch.setattr(publish.os, "replace", disk_full)
    with pytest.raises(MonitorError, match="2026-11-19.md: cannot write the digest: No space left on device"):
        make_digest(cfg, DAY, now=NOW + timedelta(hours=1))
    monkeypatch.undo()
    assert (cfg.digest_dir / "2026-11-19.md").read_bytes() == before
    assert not [p for p in cfg.digest_dir.iterdir() if p.name.startswith(".")]  # no temporary files left


# ------------------------------------------------------------------ issue 13: what the reading showed


def monitor_cli(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )


def with_a_dead_feed(httpserver: HTTPServer, tmp_path: Path, extra: str = "") -> Path:
    """The IPO/LATE feed, and a feed that starts failing at NOW (the morning after DAY)."""
    httpserver.expect_request("/f").respond_with_data(rss([IPO, LATE]), content_type="application/rss+xml")
    httpserver.expect_request("/dead").respond_with_data("gone for now", status=503)
    path = write_config(tmp_path, [httpserver.url_for("/f"), httpserver.url_for("/dead")], extra)
    poll_once(load_config(path), now=NOW)
    return path


def test_a_past_days_digest_lists_only_feeds_that_were_failing_by_then(httpserver: HTTPServer, tmp_path: Path) -> None:
    cfg = load_config(with_a_dead_feed(httpserver, tmp_path))
    make_digest(cfg, DAY, now=NOW)  # the 19th, built on the 20th: the feed began failing on the 20th
    past = json.loads((cfg.digest_dir / "2026-11-19.json").read_text())
    assert past["feeds_failing"] == [] and "Feeds failing" not in (cfg.digest_dir / "2026-11-19.md").read_text()
    make_digest(cfg, DAY + timedelta(days=1), now=NOW)  # the 20th: it was failing that day
    current = json.loads((cfg.digest_dir / "2026-11-20.json").read_text())
    assert [f["url"] for f in current["feeds_failing"]] == [httpserver.url_for("/dead")]
    # A week later, the 20th's digest rebuilt still lists it: it has been failing since then.
    make_digest(cfg, DAY + timedelta(days=1), now=NOW + timedelta(days=7))
    assert json.loads((cfg.digest_dir / "2026-11-20.json").read_text())["feeds_failing"] != []


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_digest_files_follow_the_umask(httpserver: HTTPServer, tmp_path: Path, umask: int, mode: int) -> None:
    cfg = load_config(stored(httpserver, tmp_path))
    old = os.umask(umask)
    try:
        result = make_digest(cfg, DAY, now=NOW)
    finally:
        os.umask(old)
    for path in [*result.paths, cfg.digest_dir / "index.html", cfg.digest_dir / "feed.xml"]:
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


def test_what_is_delivered_is_what_was_written(httpserver: HTTPServer, tmp_path: Path) -> None:
    bodies: list[bytes] = []

    def hook(request: Request) -> Response:
        bodies.append(request.data)
        return Response("ok")

    httpserver.expect_request("/hook", method="POST").respond_with_handler(hook)
    cfg = load_config(stored(httpserver, tmp_path, f'[digest.webhook]\nurl = "{httpserver.url_for("/hook")}"\n'))
    result = make_digest(cfg, DAY, now=NOW)
    assert result.delivered and bodies == [(cfg.digest_dir / "2026-11-19.json").read_bytes()]


def test_deliver_with_nothing_configured_says_so(
    httpserver: HTTPServer, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    stored(httpserver, tmp_path)
    proc = monitor_cli(tmp_path, subprocess_env, "digest", "--date", "2026-11-19", "--deliver")
    assert proc.returncode == 1
    assert "monitor: digest written but not delivered: no delivery is configured" in proc.stderr
    assert "[digest.webhook]" in proc.stderr
    assert (tmp_path / "data" / "digests" / "2026-11-19.md").exists()  # the files are written all the same
    quiet = monitor_cli(tmp_path, subprocess_env, "digest", "--date", "2026-11-19")
    assert quiet.returncode == 0 and "delivery" not in quiet.stderr  # not asked for: nothing to say


@pytest.mark.parametrize("setting", ["yesterday", "today"])
def test_stories_and_digest_default_to_the_same_day(
    httpserver: HTTPServer, tmp_path: Path, subprocess_env: dict[str, str], setting: str
) -> None:
    stored(httpserver, tmp_path, f'[digest]\nday = "{setting}"\n')
    before = datetime.now(timezone.utc).date()
    digest = monitor_cli(tmp_path, subprocess_env, "digest", "--format", "json")
    stories = monitor_cli(tmp_path, subprocess_env, "stories")
    after = datetime.now(timezone.utc).date()
    offset = timedelta(days=1 if setting == "yesterday" else 0)
    days = {(before - offset).isoformat(), (after - offset).isoformat()}
    built = Path(digest.stdout.split()[0]).stem
    assert built in days, digest.stdout
    assert f"on {built}." in stories.stdout or f"Stories of {built}" in stories.stdout, stories.stdout


def test_search_explains_its_marks_pages_and_gives_plain_json(
    httpserver: HTTPServer, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    items = [dict(IPO, link=f"https://wire.example/ipo{n}", guid=f"g{n}", title=f"OpenAI weighs an IPO, part {n}")
             for n in range(5)]
    httpserver.expect_request("/f").respond_with_data(rss(items), content_type="application/rss+xml")
    poll_once(load_config(write_config(tmp_path, [httpserver.url_for("/f")])), now=NOW)

    page = monitor_cli(tmp_path, subprocess_env, "search", "offering", "--limit", "2")
    assert page.returncode == 0, page.stderr
    assert "Results 1-2 of 5 for 'offering'; * = flagged, [words] = what matched." in page.stdout
    assert "3 more: --offset 2, or --all." in page.stdout
    assert "[offering]" in page.stdout
    nxt = monitor_cli(tmp_path, subprocess_env, "search", "offering", "--limit", "2", "--offset", "4")
    assert "Results 5-5 of 5" in nxt.stdout and "more:" not in nxt.stdout
    every = monitor_cli(tmp_path, subprocess_env, "search", "offering", "--all", "--json")
    results = json.loads(every.stdout)
    assert len(results) == 5 and every.stderr == ""
    assert all("[" not in r["snippet"] and "offering" in r["snippet"] for r in results)
    cut = monitor_cli(tmp_path, subprocess_env, "search", "offering", "--json")
    assert len(json.loads(cut.stdout)) == 5 and cut.stderr == ""  # all 5 fit in the default 20
    two = monitor_cli(tmp_path, subprocess_env, "search", "offering", "--json", "--limit", "2")
    assert len(json.loads(two.stdout)) == 2 and "2 of 5 results" in two.stderr
