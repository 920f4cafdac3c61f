"""The whole several-machines mode at once (issue 14): PostgreSQL as the store, two real
`monitor worker` processes over a real Redis, and the real corpus feeds served on
127.0.0.1 — against the single-process SQLite pipeline polling the same feeds.

Both runs are `monitor poll` through the CLI; they must store the same articles.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import queue_support
from feedgen import CORPUS, RULES, wellformed_corpus
from queue_support import FeedServer, Worker, queue_config

from storage import open_store

redis_server = queue_support.redis_server
feed_server = queue_support.feed_server

pytestmark = [
    pytest.mark.queue,
    pytest.mark.pg,
    pytest.mark.slow,
    pytest.mark.skipif(not wellformed_corpus(), reason=f"feed corpus not found at {CORPUS}"),
]


def write_config(root: Path, feeds: list[str], extra: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "rules.toml").write_text(RULES, encoding="utf-8")
    lines = [extra, "[rules]", 'files = ["rules.toml"]', "[fetch]", "timeout = 20", "[schedule]", "jitter = 0"]
    for url in feeds:
        lines += ["[[feeds]]", f'url = "{url}"']
    (root / "monitor.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def poll(cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "monitor", "poll"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def stored(target: Path | str) -> tuple[set[tuple[Any, ...]], set[frozenset[tuple[Any, ...]]], set[tuple[Any, ...]]]:
    """(entries as (feed URL, guid, entry URL); which entries share an article; the articles one feed carries).

    Feeds are polled concurrently in both runs, so when two feeds carry one
    article the first to be stored gives it its URL, title and words
    (docs/architecture.md, entry identity): for those only the grouping of
    entries into articles is compared; an article one feed carries is
    compared whole (URL, title, words, flagged, tags)."""
    with open_store(target) as store:
        feeds = {f.id: f.url for f in store.list_feeds()}
        groups: dict[int, set[tuple[Any, ...]]] = {}
        for fid, guid, url, aid in store.db.execute("SELECT feed_id, guid, url, article_id FROM entries").fetchall():
            groups.setdefault(aid, set()).add((feeds[fid], guid, url))
        single = {
            (a["url"], a["title"], a["content_hash"], bool(a["flagged"]), tuple(sorted(a["tags"])))
            for a in store.iter_articles()
            if len({e[0] for e in groups.get(a["id"], ())}) == 1
        }
        return {e for g in groups.values() for e in g}, {frozenset(g) for g in groups.values()}, single


def test_two_workers_on_postgres_store_what_one_sqlite_process_stores_for_the_corpus(
    tmp_path: Path, subprocess_env: dict[str, str], pg_url: str, redis_server: Any, feed_server: FeedServer
) -> None:
    names = wellformed_corpus()
    urls = [feed_server.add(f"/{name}", (CORPUS / name).read_bytes()) for name in names]

    alone = tmp_path / "alone"
    write_config(alone, urls, '[storage]\npath = "data/monitor.db"')
    assert poll(alone, subprocess_env).startswith(f"polled {len(urls)} feeds: {len(urls)} ok")

    cluster = tmp_path / "cluster"
    write_config(cluster, urls, f'[storage]\nurl = "{pg_url}"\n' + queue_config(redis_server.url))
    workers = [Worker(cluster, subprocess_env, f"worker{n}", concurrency=2) for n in range(2)]
    try:
        out = poll(cluster, subprocess_env)
    finally:
        for w in workers:
            w.stop()
    assert out.startswith(f"polled {len(urls)} feeds: {len(urls)} ok"), out
    # Both workers did part of the round (each logs the tasks it ran).
    assert all("succeeded" in w.text() for w in workers), [w.text()[-500:] for w in workers]

    want_entries, want_groups, want_single = stored(alone / "data" / "monitor.db")
    got_entries, got_groups, got_single = stored(pg_url)
    assert len(want_groups) > 1000  # the corpus holds thousands of items
    assert len(want_groups) > len(want_single)  # and some articles that several feeds carry
    assert got_entries == want_entries
    assert got_groups == want_groups  # nothing stored twice, nothing merged that should not be
    assert got_single == want_single
