"""Story membership does not depend on arrival order, spans stay bounded, feed template words do not group.

The order test polls our own multi-outlet fixture articles (tests/data/stories/articles.jsonl, one RSS
feed per outlet served by pytest_httpserver) into a real SQLite file, one feed at a time, in several
shuffled orders, and compares the resulting partitions exactly.
"""

from __future__ import annotations

import importlib.util
import json
import random
import sqlite3
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from feedgen import rss, write_config
from pytest_httpserver import HTTPServer

from monitor import stories as st
from monitor.config import load_config
from monitor.service import poll_once

DATA = Path(__file__).parent / "data" / "stories" / "articles.jsonl"
ROWS: list[dict[str, Any]] = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
LAST = max(datetime.fromisoformat(r["published"]) for r in ROWS)
# A developing story told in three outlets: A and B share nothing, C tells both halves. Whichever pair
# arrives first, the third must end in the same story: C bridges A and B.
BRIDGE = [
    {"id": "bridge-a", "group": "bridge", "outlet": "Bridge A", "published": (LAST - timedelta(hours=3)).isoformat(),
     "title": "Contoso opens Lisbon datacenter for Fabrikam models",
     "text": "Contoso opened its Lisbon datacenter campus, built to train Fabrikam models, with twelve halls, four "
             "substations and two hundred engineers on site."},
    {"id": "bridge-b", "group": "bridge", "outlet": "Bridge B", "published": (LAST - timedelta(hours=2)).isoformat(),
     "title": "Council questions river water drawn for server cooling",
     "text": "Council members questioned the river water drawn for cooling servers, asking regulators to audit "
             "permits, drought plans and summer limits."},
    {"id": "bridge-c", "group": "bridge", "outlet": "Bridge C", "published": (LAST - timedelta(hours=1)).isoformat(),
     "title": "Contoso Lisbon datacenter opens amid river water questions",
     "text": "Contoso opened its Lisbon datacenter campus for Fabrikam models; council members questioned the river "
             "water drawn for cooling and asked regulators to audit permits."},
]
ALL = ROWS + BRIDGE
NOW = LAST + timedelta(hours=1)


def serve_outlets(httpserver: HTTPServer) -> dict[str, str]:
    """One feed per outlet; returns outlet -> feed URL."""
    by_outlet: dict[str, list[dict[str, str]]] = {}
    for r in ALL:
        by_outlet.setdefault(r["outlet"], []).append({
            "title": r["title"], "text": r["text"], "link": f"https://news.example/{r['id']}", "guid": r["id"],
            "date": format_datetime(datetime.fromisoformat(r["published"])),
        })
    urls = {}
    for n, (outlet, items) in enumerate(sorted(by_outlet.items())):
        path = f"/feed{n}"
        httpserver.expect_request(path).respond_with_data(rss(items, title=outlet), content_type="application/rss+xml")
        urls[outlet] = httpserver.url_for(path)
    return urls


def partition(db: Path) -> frozenset[frozenset[str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT guid, story_id FROM articles").fetchall()
        spans = conn.execute(
            "SELECT s.id, s.members, count(a.id) FROM stories s LEFT JOIN articles a ON a.story_id = s.id GROUP BY s.id"
        ).fetchall()
    # The stories table agrees with its articles after merges (no orphan, counts summed).
    assert all(members == count for _, members, count in spans), spans
    groups: dict[int, set[str]] = {}
    for guid, story in rows:
        groups.setdefault(story, set()).add(guid)
    return frozenset(frozenset(g) for g in groups.values())


def test_the_same_feeds_in_any_order_give_the_same_stories(httpserver: HTTPServer, tmp_path: Path) -> None:
    urls = serve_outlets(httpserver)
    outlets = sorted(urls)
    # Sorted: the bridge's A and B arrive before C; reversed: C first; then shuffles.
    orders = [outlets, outlets[::-1]] + [random.Random(seed).sample(outlets, len(outlets)) for seed in range(4)]
    seen: dict[frozenset[frozenset[str]], list[str]] = {}
    for n, order in enumerate(orders):
        run = tmp_path / f"run{n}"
        run.mkdir()
        cfg = load_config(write_config(run, list(urls.values())))
        for outlet in order:
            poll_once(cfg, feed_urls=[urls[outlet]], now=NOW)
        seen.setdefault(partition(cfg.storage_path), order)
    assert len(seen) == 1, f"{len(seen)} different groupings from {len(orders)} orders: {list(seen.values())}"
    (got,) = seen
    story_of = {guid: i for i, group in enumerate(got) for guid in group}
    assert story_of["bridge-a"] == story_of["bridge-b"] == story_of["bridge-c"]
    precision, recall = st.pair_accuracy([r["group"] for r in ALL], [story_of[r["id"]] for r in ALL])
    assert precision == 1.0
    assert recall >= 0.95


def fp(*words: str) -> tuple[int, ...]:
    return tuple(sorted(st.shingles(" ".join(words), "")))


T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)


def test_an_article_that_bridges_two_stories_merges_them() -> None:
    left = fp("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")
    right = fp("golf", "hotel", "india", "juliet", "kilo", "lima")
    bridge = fp("alpha", "bravo", "charlie", "golf", "hotel", "india")
    book = st.StoryBook(timedelta(days=3), {5: (T0, T0), 9: (T0, T0)})
    cands = [st.StorySig(1, 5, left, "a", T0), st.StorySig(2, 9, right, "b", T0)]
    assert not st.same_story(st.ArticleSig("a", left, T0), cands[1])  # the two stories are apart on their own
    joined = book.place(st.ArticleSig("c", bridge, T0 + timedelta(hours=1)), cands, new_ref=-1)
    assert joined == 5  # the older stored story survives
    assert book.find(9) == 5
    assert book.merged == {5: {9}}


def test_a_bridge_that_would_stretch_the_span_past_the_window_merges_nothing() -> None:
    left = fp("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")
    right = fp("golf", "hotel", "india", "juliet", "kilo", "lima")
    bridge = fp("alpha", "bravo", "charlie", "golf", "hotel", "india")
    book = st.StoryBook(timedelta(days=3), {5: (T0, T0), 9: (T0 + timedelta(days=4), T0 + timedelta(days=4))})
    cands = [st.StorySig(1, 5, left, "a", T0), st.StorySig(2, 9, right, "b", T0 + timedelta(days=4))]
    joined = book.place(st.ArticleSig("c", bridge, T0 + timedelta(days=2)), cands, new_ref=-1)
    assert joined in (5, 9)
    assert book.merged == {}


def test_a_story_is_bounded_by_its_first_article_not_chained() -> None:
    # Each call-out is like the last, 20 hours apart: before, each joined the previous one and the
    # story drifted for days; now the story closes `window` after its first article.
    items = [st.Draft(f"Alarm {n}", "fire alarm at the county hospital, crews sent, false alarm", T0 + timedelta(hours=20 * n))
             for n in range(8)]
    got = st.group_in_memory(items, window=timedelta(days=3))
    for story in set(got):
        when = [items[i].published for i in range(len(items)) if got[i] == story]
        assert max(when) - min(when) <= timedelta(days=3)
    assert len(set(got)) >= 2


def test_a_feeds_template_words_do_not_group_its_items() -> None:
    firms = ["Western Digital", "Gartner", "PayPal", "Fiserv", "Global Payments", "Vantiv", "Total System Services",
             "First Data"]
    items = [st.Draft(f"{f} Outperform", f"Der Analyst Capital Markets hat die Einstufung fuer {f} auf Outperform "
                      "mit einem Kursziel belassen", T0 + timedelta(minutes=n)) for n, f in enumerate(firms)]
    feeds = ["ratings"] * len(items)
    assert len(set(st.group_in_memory(items))) < len(items)  # without the discount the template groups them
    assert len(set(st.group_in_memory(items, feeds=feeds))) == len(items)


def test_template_shingles_need_recurrence_across_the_fetch() -> None:
    fps = [fp("outperform", name) for name in ("gartner", "paypal", "fiserv", "vantiv")] + [fp("unique", "words")]
    template = st.template_shingles(fps)
    assert template == set(fp("outperform"))  # in 4 of 5 items; the names and the odd item are news
    assert st.template_shingles(fps[:3]) == frozenset()  # three items are too few to show a template


CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "feeds" / "wellformed"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not present")
def test_on_the_real_corpus_no_story_spans_past_the_window_and_templates_do_not_group() -> None:
    # bench/stories.py computes the figures docs/benchmarks.md reports; the test holds them.
    spec = importlib.util.spec_from_file_location("bench_stories", Path(__file__).resolve().parents[1] / "bench" / "stories.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    count, multi, faulty = bench.corpus_grouping(CORPUS)
    assert count > 3000 and multi > 100
    assert not [f for f, _ in faulty if any(x.startswith("spans") for x in f)]
    titles = [t for _, ts in faulty for t in ts]
    assert not any("Outperform" in t for t in titles)  # the finanzen.net analyst ratings stay apart
    # Measured: 5 stories whose members share no distinctive title word (23 before the discount).
    assert len(faulty) <= 6, faulty


def test_a_polled_feeds_template_does_not_group_its_items(httpserver: HTTPServer, tmp_path: Path) -> None:
    firms = ["Western Digital", "Gartner", "PayPal", "Fiserv", "Global Payments", "Vantiv", "Total System Services",
             "First Data"]
    items = [{"title": f"{f} Outperform", "link": f"https://ratings.example/{n}", "guid": f"r{n}",
              "date": format_datetime(T0 + timedelta(minutes=n)),
              "text": f"Der Analyst Capital Markets hat die Einstufung fuer {f} auf Outperform mit einem Kursziel belassen"}
             for n, f in enumerate(firms)]
    httpserver.expect_request("/ratings").respond_with_data(rss(items, title="Ratings"), content_type="application/rss+xml")
    cfg = load_config(write_config(tmp_path, [httpserver.url_for("/ratings")]))
    poll_once(cfg, now=T0 + timedelta(hours=1))
    assert len(partition(cfg.storage_path)) == len(firms)
