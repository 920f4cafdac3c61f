"""Scale work (issue 12): batched writes stay crash-consistent, connections are reused, logs stay bounded."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
from feedgen import rss, write_config

from monitor.decide import Policy
from monitor.fetch import Fetcher, FetchSettings
from monitor.pipeline import FeedReport, Pipeline
from rules import load_rules
from storage import Store

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)


class FeedServer:
    """Feeds /0.xml .. /N.xml with ETags; /hang.xml waits until released. Counts requests and connections."""

    def __init__(self, feeds: int, items: int = 3):
        self.bodies = [
            rss([{"title": f"Item {i} of feed {n}", "link": f"https://s.example/{n}/{i}", "guid": f"{n}-{i}",
                  "text": f"Words of item {i} in feed {n}."} for i in range(items)], title=f"Feed {n}")
            for n in range(feeds)
        ]
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.full: list[str] = []
        self.conditional: list[str] = []
        self.connections = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with outer.lock:
                    outer.connections += 1

            def do_GET(self) -> None:  # noqa: N802
                name = self.path.strip("/").split(".")[0]
                if name == "hang":
                    outer.release.wait(60)
                    body, etag = outer.bodies[0].replace(b"Feed 0", b"Hanging"), '"hang"'
                else:
                    body, etag = outer.bodies[int(name)], f'"v{name}"'
                if self.headers.get("If-None-Match") == etag:
                    with outer.lock:
                        outer.conditional.append(name)
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with outer.lock:
                    outer.full.append(name)
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str | int) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/{name}.xml"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    srv = FeedServer(12)
    yield srv
    srv.close()


def test_a_feed_is_reported_only_once_its_batch_is_committed(feeds: FeedServer, tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    write_config(tmp_path, [])  # writes rules.toml
    store = Store(tmp_path / "m.db")
    for n in range(12):
        store.add_feed(feeds.url(n), now=NOW)
    seen: list[tuple[str, str | None, int]] = []
    other = sqlite3.connect(tmp_path / "m.db")

    def on_done(report: FeedReport) -> None:
        # Another connection sees only committed data: the feed's articles and its ETag must be there.
        etag = other.execute("SELECT etag FROM feeds WHERE url = ?", (report.url,)).fetchone()[0]
        n = other.execute(
            "SELECT count(*) FROM entries e JOIN feeds f ON f.id = e.feed_id WHERE f.url = ?", (report.url,)
        ).fetchone()[0]
        seen.append((report.url, etag, n))

    with Fetcher(FetchSettings(per_host=8)) as fetcher:
        pipeline = Pipeline(store, fetcher, load_rules([rules]), policy=Policy(jitter=0), concurrency=8, processes=0)
        summary = pipeline.poll(store.list_feeds(), now=NOW, on_feed_done=on_done)
    assert summary.ok == 12
    assert sorted(seen) == sorted((feeds.url(n), f'"v{n}"', 3) for n in range(12))
    other.close()
    store.close()


def test_a_killed_poll_loses_only_unfinished_feeds_and_the_next_poll_fetches_them_again(
    feeds: FeedServer, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    urls = [feeds.url(n) for n in range(12)] + [feeds.url("hang")]
    cfg = write_config(tmp_path, urls)
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(cfg), "poll"], cwd=tmp_path, env=subprocess_env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    db = tmp_path / "data" / "monitor.db"
    deadline = time.monotonic() + 60
    stored = 0
    while time.monotonic() < deadline and stored < 12:  # wait for a condition, not for a time
        time.sleep(0.1)
        if db.exists():
            try:
                with sqlite3.connect(db) as con:
                    stored = con.execute("SELECT count(*) FROM feeds WHERE etag IS NOT NULL").fetchone()[0]
            except sqlite3.OperationalError:
                pass
    assert stored == 12
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT f.url, f.etag, (SELECT count(*) FROM entries e WHERE e.feed_id = f.id) FROM feeds f"
        ).fetchall()
    # All or nothing per feed: an ETag is stored exactly when the feed's articles are.
    assert {url: (etag is not None, n) for url, etag, n in rows} == (
        {u: (True, 3) for u in urls[:-1]} | {urls[-1]: (False, 0)}
    )
    before = len(feeds.full)
    feeds.release.set()
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(cfg), "poll"], cwd=tmp_path, env=subprocess_env,
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(feeds.conditional) == sorted(str(n) for n in range(12))
    # Only the unfinished feed came in full (the killed poll's request for it may be answered too, unread).
    assert set(feeds.full[before:]) == {"hang"}
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(*) FROM feeds WHERE etag IS NULL").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM entries").fetchone()[0] == 13 * 3


def test_sync_of_an_unchanged_feed_list_does_nothing_and_a_hand_edit_makes_it_look_again(tmp_path: Path) -> None:
    store = Store(tmp_path / "m.db")
    specs = [(f"https://s{i}.example/feed.xml", f"Feed {i}", None) for i in range(50)]
    store.sync_configured_feeds(specs, now=NOW)
    assert len(store.list_feeds()) == 50
    store.db.execute("UPDATE feeds SET name = 'edited' WHERE url = ?", (specs[0][0],))
    store.db.conn.commit()
    store.sync_configured_feeds(specs, now=NOW)  # same list: skipped, the edit stays
    assert store.get_feed(specs[0][0]).name == "edited"
    store.remove_feed(specs[1][0])  # by hand: the next sync looks at the list again
    store.sync_configured_feeds(specs, now=NOW)
    assert store.get_feed(specs[0][0]).name == "Feed 0"
    assert not store.get_feed(specs[1][0]).removed
    store.sync_configured_feeds(specs[2:], now=NOW)  # two dropped from the config: retired
    assert {f.url for f in store.list_feeds()} == {u for u, _, _ in specs[2:]}
    store.close()


def test_a_configured_feed_is_found_by_index_not_by_scan(tmp_path: Path) -> None:
    store = Store(tmp_path / "m.db")
    plan = " ".join(
        r[-1] for r in store.db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM feeds WHERE url = ? OR origin_url = ?", ("a", "a")
        ).fetchall()
    )
    assert "idx_feeds_origin_url" in plan and "SCAN" not in plan
    store.close()


def test_fetch_log_keeps_one_row_per_feed_and_day_and_drops_what_is_past_retention(
    tmp_path: Path, store_target: Path | str
) -> None:
    from datetime import timedelta

    from monitor.config import load_config
    from monitor.service import housekeeping, housekeeping_due
    from storage import open_store

    path = write_config(tmp_path, ["https://a.example/feed.xml", "https://b.example/feed.xml"])
    if isinstance(store_target, str):  # the same housekeeping on PostgreSQL
        path.write_text(path.read_text().replace('path = "data/monitor.db"', f'url = "{store_target}"'))
    cfg = load_config(path)
    now = NOW
    with open_store(cfg.store_target) as store:
        store.sync_configured_feeds([(f.url, f.name, f.interval) for f in cfg.feeds], now=now)
        a, b = (f.id for f in store.list_feeds())
        rows = []
        for days_ago in (0, 1, 2, 40):
            for k in range(4):
                at = (now - timedelta(days=days_ago)).replace(hour=1 + k * 5)
                for feed in (a, b):
                    status, warning = ("error", "bad") if k == 3 and feed == b else ("ok", None)
                    rows.append((feed, at.isoformat(), status, 200, k, 100, warning))
        with store.transaction():
            store.db.conn.executemany(
                "INSERT INTO fetch_log (feed_id, at, status, http_status, new, bytes, warning) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        latest_warning = store.last_warnings()
    assert housekeeping_due(cfg, now=now)
    housekeeping(cfg, now=now)
    assert not housekeeping_due(cfg, now=now + timedelta(hours=23))
    with open_store(cfg.store_target) as store:
        got = store.db.execute(
            "SELECT feed_id, substr(at, 1, 10), count(*), sum(fetches), sum(new), sum(bytes), max(status) "
            "FROM fetch_log GROUP BY feed_id, substr(at, 1, 10) ORDER BY 1, 2"
        ).fetchall()
        assert store.last_warnings() == latest_warning
    today, d1, d2 = (str((now - timedelta(days=d)).date()) for d in (0, 1, 2))
    assert got == [
        (a, d2, 1, 4, 6, 400, "ok"), (a, d1, 1, 4, 6, 400, "ok"), (a, today, 4, 4, 6, 400, "ok"),
        (b, d2, 1, 4, 6, 400, "error"), (b, d1, 1, 4, 6, 400, "error"), (b, today, 4, 4, 6, 400, "ok"),
    ]  # 40 days ago: past the 30-day default, gone; today: untouched; a folded day keeps its last outcome


def test_a_round_reuses_one_connection_per_host(feeds: FeedServer) -> None:
    urls = [feeds.url(n) for n in range(12)]
    with Fetcher(FetchSettings(per_host=1)) as fetcher:
        first = [fetcher.fetch(u, now=NOW) for u in urls]
        again = [fetcher.fetch(u, etag=r.etag, now=NOW) for u, r in zip(urls, first)]
    assert all(r.body for r in first) and all(r.not_modified for r in again)
    # 24 requests (12 full bodies, 12 answered 304) over a single kept-alive connection.
    assert len(feeds.full) == 12 and len(feeds.conditional) == 12
    assert feeds.connections == 1
