"""Stories benchmark: place 10k new articles against 10k, 100k and 1M stored ones.

For each size it builds an SQLite file holding `articles(id, story_id,
published, title, signature BLOB)` and `story_bands(band_key, article_id)`
indexed on band_key (the shape storage migration m002 gives them), then
times placing 10,000 new articles, each: shingles + MinHash signature +
time-scoped band keys, the candidate query (band keys joined to articles
within the window, as `Store.story_candidates` does), `choose_story`, and
writing the article's story, signature and band keys.

Beside it, in the same run, a naive baseline places new articles by
comparing against every stored article published within the window (an
index range on published, unpack, compare), capped in time.

The stored bulk gets random signatures rather than shingled texts (shingling
a million texts in pure Python would take most of an hour): random
signatures share no band keys by chance, so the index lookups read only the
planted related articles. Real articles about the same companies share some
bands by chance; see the "unrelated candidates" figure measured on the
fixtures, printed at the end. Stored articles spread over 365 days; the new
ones fall in the last three, and a quarter of them rewrite one of 500
planted stories stored with real signatures, so joins happen.

    python bench/stories.py [--sizes 10000,100000,1000000] [--new 10000] [--naive-seconds 20]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sqlite3
import struct
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor import stories as st  # noqa: E402

END = datetime(2026, 11, 24, tzinfo=timezone.utc)
SPAN_DAYS = 365
WINDOW = st.DEFAULT_WINDOW
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "data" / "stories" / "articles.jsonl"
VOCAB = (
    "cloud deal model board chips talks market growth court stake launch users price rivals plan revenue "
    "investors lawsuit regulators europe data center capacity contract license training agents search office "
    "developers enterprise customers outage security billing shares quarter forecast partner exclusive rights "
    "compute gigawatt nonprofit restructuring valuation funding round chief executive officer hires departs"
).split()


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="seconds")


def make_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-262144")
    conn.execute(
        "CREATE TABLE articles (id INTEGER PRIMARY KEY, story_id INTEGER, published TEXT NOT NULL, "
        "title TEXT NOT NULL, signature BLOB)"
    )
    conn.execute("CREATE TABLE story_bands (band_key INTEGER NOT NULL, article_id INTEGER NOT NULL)")
    return conn


def fake_text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(VOCAB) + str(rng.randrange(400)) for _ in range(n))


def fill(conn: sqlite3.Connection, n: int, rng: random.Random) -> tuple[list[tuple[str, str]], float]:
    """n stored articles; returns the 500 planted stories' (title, text) and the seconds taken."""
    t0 = time.perf_counter()
    planted = [(fake_text(rng, 8), fake_text(rng, 40)) for _ in range(500)]
    start = END - timedelta(days=SPAN_DAYS)
    conn.execute("BEGIN")
    for base in range(0, n, 20000):
        arts: list[tuple[int, int, str, str, bytes]] = []
        bands: list[tuple[int, int]] = []
        for i in range(base + 1, min(n, base + 20000) + 1):
            if i <= len(planted):
                title, text = planted[i - 1]
                when = END - timedelta(days=1, seconds=rng.randrange(86400))  # within the window of every new one
                fp = st.fingerprint(title, text)
                sig = st.signature(fp)
            else:
                title = f"stored {i}"
                when = start + timedelta(seconds=rng.randrange(SPAN_DAYS * 86400))
                sig = struct.unpack("<64I", os.urandom(256))  # random: see the module docstring
                fp = tuple(sorted(struct.unpack("<70I", os.urandom(280))))  # random shingles likewise
            arts.append((i, i, iso(when), title, st.pack(fp)))
            bands.extend((k, i) for k in st.timed_band_keys(sig, when))
        conn.executemany("INSERT INTO articles VALUES (?, ?, ?, ?, ?)", arts)
        conn.executemany("INSERT INTO story_bands VALUES (?, ?)", bands)
    conn.execute("COMMIT")
    # Built after the bulk load (sorting once is far faster than growing a B-tree row by row).
    conn.execute("CREATE INDEX idx_story_bands_key ON story_bands(band_key, article_id)")
    conn.execute("CREATE INDEX idx_articles_published ON articles(published)")
    conn.execute("ANALYZE")
    return planted, time.perf_counter() - t0


def new_articles(planted: list[tuple[str, str]], count: int, rng: random.Random) -> list[st.Draft]:
    out = []
    for _ in range(count):
        when = END - timedelta(seconds=rng.randrange(3 * 86400))
        if rng.random() < 0.25:
            title, text = rng.choice(planted)
            words = text.split()
            for _ in range(6):  # a rewrite: a few words changed
                words[rng.randrange(len(words))] = rng.choice(VOCAB)
            out.append(st.Draft(title, " ".join(words), when))
        else:
            out.append(st.Draft(fake_text(rng, 8), fake_text(rng, 40), when))
    return out


def place(conn: sqlite3.Connection, items: list[st.Draft], next_id: int) -> tuple[float, int, int]:
    """Seconds per article, how many joined a stored story, candidate rows read."""
    joined = read = 0
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    for n, it in enumerate(items):
        key = st.story_key(it.title, it.text, it.published)
        meets = st.meeting_keys(key.band_keys, it.published, WINDOW)
        marks = ",".join("?" * len(meets))
        rows = conn.execute(
            "SELECT DISTINCT a.id, a.story_id, a.signature, a.title, a.published FROM story_bands b "
            f"JOIN articles a ON a.id = b.article_id WHERE b.band_key IN ({marks}) "
            "AND a.published >= ? AND a.published <= ?",
            (*meets, iso(it.published - WINDOW), iso(it.published + WINDOW)),
        ).fetchall()
        read += len(rows)
        cols = ("id", "story_id", "signature", "title", "published")
        story = st.choose_story_from_rows(it.title, key.signature, it.published, [dict(zip(cols, r)) for r in rows])
        aid = next_id + n
        joined += story is not None
        conn.execute(
            "INSERT INTO articles VALUES (?, ?, ?, ?, ?)", (aid, story or aid, iso(it.published), it.title, key.signature)
        )
        conn.executemany("INSERT INTO story_bands VALUES (?, ?)", [(k, aid) for k in key.band_keys])
        if n % 1000 == 999:
            conn.execute("COMMIT")
            conn.execute("BEGIN")
    conn.execute("COMMIT")
    return (time.perf_counter() - t0) / len(items), joined, read


def naive(conn: sqlite3.Connection, items: list[st.Draft], seconds: float) -> tuple[float, int, float]:
    """Compare each new article with every stored one in its window; seconds per article, articles done, mean compared."""
    done = compared = 0
    t0 = time.perf_counter()
    for it in items:
        new = st.ArticleSig(it.title, st.fingerprint(it.title, it.text), it.published)
        rows = conn.execute(
            "SELECT id, story_id, signature, title, published FROM articles WHERE published >= ? AND published <= ?",
            (iso(it.published - WINDOW), iso(it.published + WINDOW)),
        ).fetchall()
        cands = [st.StorySig(r[0], r[1], st.unpack(r[2]), r[3], datetime.fromisoformat(r[4])) for r in rows]
        st.choose_story(new, cands, window=WINDOW)
        compared += len(cands)
        done += 1
        if time.perf_counter() - t0 > seconds:
            break
    return (time.perf_counter() - t0) / done, done, compared / done


def json_rows() -> list[dict]:
    return [json.loads(line) for line in FIXTURES.read_text(encoding="utf-8").splitlines() if line.strip()]


def fixture_accuracy() -> tuple[float, float, int, int, int]:
    rows = [json.loads(line) for line in FIXTURES.read_text(encoding="utf-8").splitlines() if line.strip()]
    items = [st.Draft(r["title"], r["text"], datetime.fromisoformat(r["published"])) for r in rows]
    p, r = st.pair_accuracy([x["group"] for x in rows], st.group_in_memory(items))
    # Chance band sharing between different stories published within the window of each other.
    keys = [set(st.timed_band_keys(st.signature(st.shingles(d.title, d.text)), d.published)) for d in items]
    pairs = unrelated = 0
    for i, j in itertools.combinations(range(len(rows)), 2):
        if rows[i]["group"] == rows[j]["group"] or abs(items[i].published - items[j].published) > WINDOW:
            continue
        pairs += 1
        unrelated += bool(set(st.meeting_keys(keys[i])) & keys[j])
    return p, r, len(rows), unrelated, pairs


CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "feeds" / "wellformed"


def corpus_grouping(root: Path = CORPUS) -> tuple[int, int, list[tuple[list[str], list[str]]]]:
    """Group the real corpus (each feed file one fetch); (items, multi-member stories, faulty stories).

    A faulty story is one `stories.story_faults` finds wrong: longer than the
    window, or holding a member whose distinctive title words meet no other
    member's. Returns each faulty story's faults and titles.
    """
    from monitor.clean import to_article
    from monitor.parse import FeedError, parse_feed

    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    drafts: list[st.Draft] = []
    feeds: list[str] = []
    distinct: list[set[str]] = []
    for path in sorted(root.iterdir()):
        try:
            parsed = parse_feed(path.read_bytes(), "https://corpus.invalid/")
        except FeedError:
            continue
        arts = [to_article(e, base_url="https://corpus.invalid/", fetched_at=now) for e in parsed.entries]
        drafts += [st.Draft(a.title, a.text, a.published) for a in arts]
        feeds += [path.name] * len(arts)
        distinct += st.distinctive_title_words([a.title for a in arts])
    got = st.group_in_memory(drafts, feeds=feeds)
    stories: dict[int, list[int]] = {}
    for i, g in enumerate(got):
        stories.setdefault(g, []).append(i)
    multi = [m for m in stories.values() if len(m) > 1]
    faulty = []
    for m in multi:
        faults = st.story_faults([(drafts[i].published, drafts[i].title, distinct[i]) for i in m], window=WINDOW)
        if faults:
            faulty.append((faults, [drafts[i].title for i in m]))
    return len(drafts), len(multi), faulty


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--new", type=int, default=10000)
    ap.add_argument("--naive-seconds", type=float, default=20.0)
    ap.add_argument("--corpus-only", action="store_true", help="only the real-corpus and fixture figures")
    args = ap.parse_args()
    if args.corpus_only:
        args.sizes = ""
    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(f"num_perm={st.NUM_PERM} bands={st.BANDS}x{st.ROWS} rows, keys scoped to {st.PERIOD.days}-day periods "
          f"({st.BANDS} index rows per article, looked up in 3 periods), window {WINDOW.days} days")
    print("stored bulk: RANDOM signatures (not shingled texts), 365 days; 500 planted stories with real signatures")
    print("| stored | fill s | placed | per article (LSH), ms | joined | candidate rows / article | "
          "naive per article, ms | naive: articles compared each | naive speedup |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        rng = random.Random(n)
        with tempfile.TemporaryDirectory() as tmp:
            conn = make_db(Path(tmp) / "bench.db")
            planted, fill_s = fill(conn, n, rng)
            items = new_articles(planted, args.new, rng)
            naive_s, naive_done, naive_cmp = naive(conn, items, args.naive_seconds)
            per, joined, read = place(conn, items, n + 1)
            conn.close()
        print(f"| {n:,} | {fill_s:.0f} | {len(items):,} | {per * 1e3:.2f} | {joined:,} | {read / len(items):.2f} | "
              f"{naive_s * 1e3:.1f} (first {naive_done:,}) | {naive_cmp:,.0f} | {naive_s / per:.0f}x |", flush=True)
    p, r, count, unrelated, pairs = fixture_accuracy()
    print(f"\nfixtures ({count} articles): pairwise precision {p:.2f}, recall {r:.2f}; "
          f"different stories within the window sharing a band key by chance: {unrelated}/{pairs} pairs "
          f"({unrelated / pairs:.1%})")
    p, r = st.pair_accuracy([x["group"] for x in json_rows()], st.group_in_memory(
        [st.Draft(x["title"], x["text"], datetime.fromisoformat(x["published"])) for x in json_rows()],
        feeds=[x["outlet"] for x in json_rows()]))
    print(f"fixtures, each outlet's template discounted: pairwise precision {p:.2f}, recall {r:.2f}")
    if CORPUS.is_dir():
        count, multi, faulty = corpus_grouping()
        print(f"corpus ({count} items): {multi} stories of 2+ items, {len(faulty)} faulty")
        for faults, titles in faulty:
            print(f"  {'; '.join(faults)}: {' | '.join(t[:40] for t in titles[:5])}")


if __name__ == "__main__":
    main()
