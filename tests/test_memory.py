"""Bounded memory: the per-round entry cap, the HTML cut, and the peak RSS of a real poll.

The cap test runs the real pipeline in-process against pytest-httpserver
with the cap lowered (a module constant, the seam for this test); the bound
tests run `python -m monitor poll` subprocesses on the worst feeds under the
10 MB cap and read their peak RSS with getrusage(RUSAGE_CHILDREN): a bound
on memory, not a timing.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from feedgen import rss, write_config
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

import monitor.pipeline as pipeline
from monitor.config import load_config
from monitor.service import open_store, poll_once

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def entries(n: int) -> list[dict[str, str]]:
    return [{"title": f"Item {i}", "link": f"https://x.example/{i}", "guid": f"g{i}", "text": "w"} for i in range(n)]


def test_a_feed_past_the_cap_is_stored_over_several_polls_never_hidden_by_304(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "MAX_ENTRIES_PER_ROUND", 40)
    body = rss(entries(100))
    conditional: list[str] = []

    def handler(request: Request) -> Response:
        if request.headers.get("If-None-Match"):
            conditional.append(request.headers["If-None-Match"])
            return Response(status=304)
        return Response(body, headers={"ETag": '"v1"', "Content-Type": "application/rss+xml"})

    httpserver.expect_request("/big.xml").respond_with_handler(handler)
    cfg = load_config(write_config(tmp_path, [httpserver.url_for("/big.xml")]))
    news = [poll_once(cfg, now=NOW + timedelta(minutes=i)) for i in range(4)]
    assert [s.new for s in news] == [40, 40, 20, 0]
    assert "60 not stored yet are left for the next polls" in (news[0].feeds[0].warning or "")
    assert "left for the next polls" not in (news[2].feeds[0].warning or "")
    # The ETag is kept only once nothing is left: the 4th poll is the first conditional one.
    assert conditional == ['"v1"']
    with open_store(cfg, now=NOW) as store:
        assert store.counts()["articles"] == 100


def test_an_entry_past_the_html_cut_is_stored_cut(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "MAX_ENTRY_HTML", 50_000)
    text = "<p>" + "word " * 40_000 + "</p>"
    httpserver.expect_request("/one.xml").respond_with_data(
        rss([{"title": "Huge", "link": "https://x.example/huge", "text": text}]), content_type="application/rss+xml"
    )
    cfg = load_config(write_config(tmp_path, [httpserver.url_for("/one.xml")]))
    summary = poll_once(cfg, now=NOW)
    assert summary.new == 1 and "1 entries longer than 50,000 characters of HTML were cut" in (summary.feeds[0].warning or "")
    with open_store(cfg, now=NOW) as store:
        row = store.article("https://x.example/huge")
    assert 40_000 < len(row["summary_text"]) <= 50_000


def peak_poll_mb(tmp_path: Path, httpserver: HTTPServer, env: dict[str, str], body: bytes) -> float:
    assert len(body) < 10_000_000  # under the response cap: the case the bound is for
    httpserver.expect_request("/feed.xml").respond_with_data(body, content_type="application/rss+xml")
    write_config(tmp_path, [httpserver.url_for("/feed.xml")])
    # A fresh interpreter runs the poll, so RUSAGE_CHILDREN is its peak alone.
    script = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run([sys.executable, '-m', 'monitor', 'poll'], capture_output=True, text=True)\n"
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.stderr.write(r.stderr[-2000:])\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    code, kb = proc.stdout.split()
    assert code == "0", proc.stderr
    return int(kb) / 1024


@pytest.mark.slow
def test_fifty_thousand_entries_poll_under_250_mb(tmp_path: Path, httpserver: HTTPServer, subprocess_env: dict[str, str]) -> None:
    assert peak_poll_mb(tmp_path, httpserver, subprocess_env, rss(entries(50_000))) < 250


@pytest.mark.slow
def test_one_nine_megabyte_entry_polls_under_250_mb(
    tmp_path: Path, httpserver: HTTPServer, subprocess_env: dict[str, str]
) -> None:
    body = rss([{"title": "Big", "link": "https://x.example/big", "text": "<p>" + "word " * (8_800_000 // 5) + "</p>"}])
    assert peak_poll_mb(tmp_path, httpserver, subprocess_env, body) < 250
