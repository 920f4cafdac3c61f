"""Digest benchmark: one day's digest with 10k, 100k and 1M articles stored (~1% flagged).

For each size it times, on the same database:
  - the day's query (Store.flagged_between) with the partial index on flagged articles;
  - the same query forced to scan the table (`NOT INDEXED`): the baseline a
    digest without that index would pay;
  - the whole build: query + build_digest + Markdown/HTML/JSON rendering.
The day's item count is the same at every size, so a flat time means the
cost follows the day's items, not the database.

Rows are bulk-inserted with short made-up text and the FTS triggers
dropped (the bench measures reading, not ingest).

    python bench/digest.py [--sizes 10000,100000,1000000] [--days 365]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor import digest as dg  # noqa: E402
from monitor.service import digest_items  # noqa: E402
from storage import Store, iso  # noqa: E402

TAGS = ["partnership", "investment", "ipo", "pbc", "lawsuit", "azure", "api", "copilot", "enterprise", "data_centers"]
WORDS = "cloud deal model board chips talks market growth court stake launch users price rivals plan".split()


def fill(store: Store, n: int, days: int, end: date, day: date, per_day: int, rng: random.Random) -> None:
    """n articles over `days` days; the measured `day` always gets `per_day` of them."""
    for trig in ("articles_ai", "articles_ad", "articles_au"):
        store.db.execute(f"DROP TRIGGER IF EXISTS {trig}")
    feed, _ = store.add_feed("http://127.0.0.1/bench.xml", now=datetime(2025, 1, 1, tzinfo=timezone.utc))
    start = datetime.combine(end - timedelta(days=days - 1), datetime.min.time(), tzinfo=timezone.utc)
    span = days * 86400
    batch = []
    conn = store.db.conn
    day_start = datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc)
    for i in range(n):
        if i < per_day:
            published = day_start + timedelta(seconds=rng.randrange(86400))
        else:
            published = start + timedelta(seconds=rng.randrange(span))
            if published.date() == day:
                published += timedelta(days=1)
        flagged = rng.random() < 0.01
        tags = rng.sample(TAGS, rng.randint(1, 3)) if flagged else []
        text = " ".join(rng.choice(WORDS) for _ in range(30))
        matches = [{"rule": "r", "term": "deal", "field": "text", "start": 0, "end": 4}] if flagged else []
        batch.append((
            feed.id, f"g{i}", f"https://bench.example/{i}", f"https://bench.example/{i}", f"Story {i} " + text[:40],
            iso(published), 1, iso(published), iso(published), text, f"h{i}", 3.0 if flagged else 0.0, int(flagged),
            json.dumps(tags), json.dumps({t: 3.0 for t in tags}), json.dumps(matches),
        ))
        if len(batch) == 20000 or i == n - 1:
            conn.executemany(
                "INSERT INTO articles (feed_id, guid, url, link, title, published, published_from_feed, first_seen, "
                "updated_at, summary_text, content_hash, score, flagged, tags, tag_scores, matches) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                batch,
            )
            conn.commit()
            batch = []
    store.db.execute("ANALYZE")


def timed(fn, repeat: int = 7) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--per-day", type=int, default=3000, help="articles on the measured day (1%% flagged)")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    tz = ZoneInfo("UTC")
    end = date(2026, 11, 20)
    day = end - timedelta(days=10)
    start, stop = dg.day_bounds(day, tz)
    print(f"{'stored':>9} {'day items':>9} {'query ms':>9} {'scan ms':>9} {'build ms':>9}   (medians of 7; build = query + build + md/html/json)")
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(Path(tmp) / "bench.db")
            t = time.perf_counter()
            fill(store, n, args.days, end, day, min(args.per_day, n), random.Random(1))
            load = time.perf_counter() - t
            rows = store.flagged_between(start, stop)
            query = timed(lambda: store.flagged_between(start, stop))
            scan_sql = (
                "SELECT a.*, f.name FROM articles a NOT INDEXED JOIN feeds f ON f.id = a.feed_id "
                "WHERE a.flagged = 1 AND a.published >= ? AND a.published < ? ORDER BY a.score DESC"
            )
            scan = timed(lambda: store.db.execute(scan_sql, (iso(start), iso(stop))).fetchall(), repeat=3)

            def build() -> None:
                d = dg.build_digest(day, tz, digest_items(store.flagged_between(start, stop)), [],
                                    tag_order=TAGS, generated_at=datetime(2026, 11, 21, tzinfo=timezone.utc))
                dg.render_markdown(d), dg.render_html(d), dg.render_json(d)

            whole = timed(build)
            store.close()
        print(f"{n:>9} {len(rows):>9} {query:>9.2f} {scan:>9.2f} {whole:>9.2f}   (loaded in {load:.0f} s)")


if __name__ == "__main__":
    main()
