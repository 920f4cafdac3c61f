"""Digests built from the store: files, delivery with retry, status, and the CLI command."""

from __future__ import annotations

import errno
import json
import logging
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
