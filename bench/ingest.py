"""Ingest benchmark: our pipeline against a naive baseline, in the same run.

Polls N local feeds (default 200 feeds x 100 entries, ~50 ms added latency)
twice; the second round is answered 304 where the client sends the ETag.
Prints feeds/s, entries/s and peak memory (max RSS) per round.

Baseline (the obvious way): sequential requests, feedparser with its
defaults (sanitizer and URI resolution on), BeautifulSoup text of each
field, one INSERT + commit per article, no conditional GET.

Each variant runs in its own process so peak memory is its own.

    python bench/ingest.py [--feeds 200] [--entries 100] [--latency 0.05] [--corpus [DIR]] [--pg postgresql://user:pw@host/db]

With --pg (a server and database where the bench may create and drop a
scratch database) the same pipeline also runs on PostgreSQL, beside SQLite
in the same run.

`--corpus` serves the real corpus feeds instead (../shared/corpus/feeds/
wellformed, read in place, each file one feed at /{n}.xml with the content
type its extension says), same variants, same two rounds.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import feedserver  # noqa: E402

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "feeds" / "wellformed"


def peak_mb() -> float:
    """Peak RSS of this process plus its largest child (the parser workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024


def run_ours(
    urls: list[str], workdir: str, concurrency: int, stories: bool, out: "mp.Queue[dict]", pg: str | None = None
) -> None:
    from monitor.decide import Policy
    from monitor.fetch import Fetcher, FetchSettings
    from monitor.pipeline import Pipeline
    from rules import default_rule_files, load_rules
    from storage import open_store

    ruleset = load_rules(default_rule_files())
    store = open_store(pg or Path(workdir) / f"ours-{stories}.db")
    now = datetime(2026, 11, 20, tzinfo=timezone.utc)
    for u in urls:
        store.add_feed(u, now=now)
    feeds = store.list_feeds()
    results = []
    with Fetcher(FetchSettings(pool_size=concurrency, per_host=concurrency)) as fetcher:
        pipeline = Pipeline(store, fetcher, ruleset, policy=Policy(jitter=0), concurrency=concurrency, stories=stories)
        for rnd in (1, 2):
            feeds = store.list_feeds()
            t = time.perf_counter()
            summary = pipeline.poll(feeds, now=now)
            dt = time.perf_counter() - t
            entries = sum(f.new + f.updated + f.linked for f in summary.feeds)
            results.append({"round": rnd, "seconds": dt, "feeds": len(summary.feeds), "entries_stored": entries,
                            "ok": summary.ok, "not_modified": summary.not_modified, "failed": summary.failed,
                            "peak_mb": peak_mb()})
    store.close()
    on = " on PostgreSQL" if pg else ""
    out.put({"variant": f"ours{on}, stories {'on' if stories else 'off'}", "rounds": results})


def run_naive(urls: list[str], workdir: str, out: "mp.Queue[dict]") -> None:
    import feedparser
    import requests
    from bs4 import BeautifulSoup

    conn = sqlite3.connect(Path(workdir) / "naive.db")
    conn.execute(
        "CREATE TABLE articles (guid TEXT PRIMARY KEY, url TEXT, title TEXT, summary TEXT, content TEXT, published TEXT)"
    )
    results = []
    session = requests.Session()
    for rnd in (1, 2):
        t = time.perf_counter()
        entries = 0
        for u in urls:
            body = session.get(u, timeout=30).content
            parsed = feedparser.parse(body)
            for e in parsed.entries:
                title = BeautifulSoup(e.get("title", ""), "html.parser").get_text(" ", strip=True)
                summary = BeautifulSoup(e.get("summary", ""), "html.parser").get_text(" ", strip=True)
                content = " ".join(
                    BeautifulSoup(c.value, "html.parser").get_text(" ", strip=True) for c in e.get("content", [])
                )
                conn.execute(
                    "INSERT OR REPLACE INTO articles VALUES (?, ?, ?, ?, ?, ?)",
                    (e.get("id"), e.get("link"), title, summary, content, e.get("published")),
                )
                conn.commit()
                entries += 1
        dt = time.perf_counter() - t
        results.append({"round": rnd, "seconds": dt, "feeds": len(urls), "entries_stored": entries, "peak_mb": peak_mb()})
    out.put({"variant": "naive baseline", "rounds": results})


def in_child(target, *args, **kwargs) -> dict:  # type: ignore[no-untyped-def]
    q: mp.Queue[dict] = mp.Queue()
    p = mp.Process(target=target, args=(*args, q), kwargs=kwargs)
    p.start()
    result = q.get()
    p.join()
    return result


def run_on_pg(server: str, urls: list[str], workdir: str, concurrency: int) -> dict:
    """The stories-on variant on a scratch PostgreSQL database, dropped afterwards."""
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    name = "monitor_bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = urlunsplit(urlsplit(server)._replace(path="/" + name))
        return in_child(run_ours, urls, workdir, concurrency, True, pg=url)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feeds", type=int, default=200)
    ap.add_argument("--entries", type=int, default=100)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--pg", metavar="URL", help="also run on PostgreSQL (a scratch database is created there)")
    ap.add_argument("--corpus", nargs="?", const=str(CORPUS), help=f"serve the real feeds of a folder (default {CORPUS})")
    args = ap.parse_args()

    if args.corpus:
        files = feedserver.folder_files(args.corpus)
        args.feeds, args.entries = len(files), 0
        server, port = feedserver.start(0, 0, args.latency, folder=args.corpus)
        print(f"{len(files)} corpus feeds from {args.corpus}, {args.latency * 1000:.0f} ms latency, "
              f"{sum(f.stat().st_size for f in files) / 2**20:.1f} MB in all")
    else:
        server, port = feedserver.start(args.feeds, args.entries, args.latency)
        print(f"{args.feeds} feeds x {args.entries} entries, {args.latency * 1000:.0f} ms latency, "
              f"{len(feedserver.make_feed(0, args.entries, __import__('random').Random(7))) / 1024:.0f} KB per feed")
    urls = [f"http://127.0.0.1:{port}/{n}.xml" for n in range(args.feeds)]
    reports = []
    with tempfile.TemporaryDirectory() as workdir:
        reports.append(in_child(run_ours, urls, workdir, args.concurrency, True))
        reports.append(in_child(run_ours, urls, workdir, args.concurrency, False))
        if args.pg:
            reports.append(run_on_pg(args.pg, urls, workdir, args.concurrency))
        if not args.skip_naive:
            reports.append(in_child(run_naive, urls, workdir))
    server.terminate()

    # Entries the feeds carry: as the naive loop stored them (it keeps every entry feedparser returns).
    total_entries = args.feeds * args.entries or reports[-1]["rounds"][0]["entries_stored"]
    print(f"{'variant':<32} {'round':>5} {'seconds':>8} {'feeds/s':>8} {'entries/s':>10} {'peak MB':>8}  notes")
    for rep in reports:
        for r in rep["rounds"]:
            # Entries/s counts the entries the feeds carried that round, processed or skipped by a 304.
            eps = total_entries / r["seconds"]
            notes = ", ".join(f"{k}={r[k]}" for k in ("ok", "not_modified", "failed") if k in r)
            print(f"{rep['variant']:<32} {r['round']:>5} {r['seconds']:>8.2f} {r['feeds'] / r['seconds']:>8.1f} "
                  f"{eps:>10.0f} {r['peak_mb']:>8.0f}  {notes}")
    if not args.skip_naive:
        naive = reports[-1]
        for ours in reports[:2]:
            for rnd in (0, 1):
                ratio = naive["rounds"][rnd]["seconds"] / ours["rounds"][rnd]["seconds"]
                print(f"round {rnd + 1}: {ours['variant']} is {ratio:.1f}x the naive baseline's entries/s (target >= 3x)")


if __name__ == "__main__":
    main()
