"""The ingest decider (monitor.ingest): entry identity and dedup, table-tested without a database,
then the same rules end to end on real SQLite files, real HTTP on 127.0.0.1 and the real corpus."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from feedgen import CORPUS, rss, wellformed_corpus, write_config
from pytest_httpserver import HTTPServer

import storage
from core.types import (
    Article,
    EntryIntent,
    KnownArticle,
    KnownEntry,
    Tagging,
    content_hash,
)
from monitor.clean import to_article
from monitor.config import load_config
from monitor.ingest import decide_entries, identify, lookup_keys, save_poll
from monitor.parse import FeedError, parse_feed
from monitor.service import open_store, poll_once
from storage import FeedUpdate, Store

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
FEED, OTHER_FEED = 1, 2


def art(guid: str, url: str, title: str = "Title", text: str = "Body") -> Article:
    return Article(guid=guid, url=url, link=url, title=title, author="", published=NOW,
                   published_from_feed=True, summary_text=text)


def decide(
    items: list[Article],
    known: dict[str, KnownEntry] | None = None,
    by_url: dict[str, KnownArticle] | None = None,
    by_hash: dict[str, KnownArticle] | None = None,
) -> list[EntryIntent]:
    hashes = [content_hash(a.title, a.text) for a in items]
    ids = identify(items, hashes)
    return decide_entries(FEED, items, [Tagging()] * len(items), hashes, ids, known or {}, by_url or {}, by_hash or {})


def actions(intents: list[EntryIntent]) -> list[str]:
    return [i.action for i in intents]


HOME = "https://site.example/"

# (case, the fetch, how many distinct articles it must give)
TABLE = [
    ("unique guids", [art("a", "https://s.example/1", "One"), art("b", "https://s.example/2", "Two")], 2),
    ("no guid, every item links the front page",
     [art("", HOME, f"Release {n}") for n in range(5)], 5),
    ("no guid, links differ only by #fragment",
     [art("", HOME, "Post one"), art("", HOME, "Post two")], 2),
    ("one misused guid on different items",
     [art("same", f"https://s.example/{n}", f"Item {n}") for n in range(5)], 5),
    ("one non-http link on every item",
     [art("", "javascript:void(0)", f"Deal {n}") for n in range(5)], 5),
    ("an item that truly repeats", [art("g", "https://s.example/1", "One")] * 3, 1),
    ("same link and title, different words",
     [art("", HOME, "Daily notes", "Monday"), art("", HOME, "Daily notes", "Tuesday")], 2),
    ("same everything but distinct guids", [art("x", HOME, "Same", "Same"), art("y", HOME, "Same", "Same")], 2),
    ("shared guid, same everything but words",
     [art("g", HOME, "Same", "First"), art("g", HOME, "Same", "Second")], 2),
]


@pytest.mark.parametrize("case,items,expected", TABLE, ids=[c for c, _, _ in TABLE])
def test_identity_table(case: str, items: list[Article], expected: int) -> None:
    intents = decide(items)
    assert actions(intents) == ["new"] * expected, case
    assert len({i.key for i in intents}) == expected, case


def test_a_unique_guid_is_the_key_and_a_shared_one_is_not() -> None:
    ids = identify([art("g1", "https://s.example/1", "A"), art("s", "https://s.example/2", "B"),
                    art("s", "https://s.example/3", "C")], ["h1", "h2", "h3"])
    assert ids[0].key == "g1"
    assert ids[1].key == "https://s.example/2\nB" and ids[2].key == "https://s.example/3\nC"


def test_a_known_entry_is_updated_when_edited_and_skipped_when_not() -> None:
    a = art("g1", "https://s.example/1", "Old title")
    known = {"g1": KnownEntry("g1", 7, content_hash(a.title, a.text), a.title, a.url, FEED)}
    assert actions(decide([a], known)) == ["skip"]
    edited = art("g1", "https://s.example/1", "New title")
    (intent,) = decide([edited], known)
    assert (intent.action, intent.article_id) == ("update", 7)


def test_a_copys_edits_never_overwrite_its_first_feeds_version() -> None:
    known = {"g1": KnownEntry("g1", 7, "old-hash", "Old", "https://s.example/1", OTHER_FEED)}
    assert actions(decide([art("g1", "https://s.example/1", "Rewritten")], known)) == ["skip"]


def test_an_entry_stored_under_an_older_key_is_found_only_when_the_title_agrees() -> None:
    # Before this policy a guid-less entry was keyed by its link.
    known = {HOME: KnownEntry(HOME, 3, content_hash("Release 1", "Body"), "Release 1", HOME, FEED)}
    same, other = art("", HOME, "Release 1"), art("", HOME, "Release 2")
    assert actions(decide([same, other], known)) == ["skip", "new"]
    assert actions(decide([other], known)) == ["new"]


def test_a_shared_guid_that_becomes_unique_still_finds_its_entry() -> None:
    a = art("s", "https://s.example/2", "B")
    key = "https://s.example/2\nB"
    known = {key: KnownEntry(key, 9, content_hash(a.title, a.text), a.title, a.url, FEED)}
    assert actions(decide([a], known)) == ["skip"]


def test_copies_across_feeds_are_linked_by_url_or_words() -> None:
    a = art("mine", "https://wire.example/story", "Deal")
    assert actions(decide([a], by_url={a.url: KnownArticle(5, OTHER_FEED)})) == ["link"]
    h = content_hash(a.title, a.text)
    moved = art("mine", "https://paper.example/x", "Deal")
    (intent,) = decide([moved], by_hash={h: KnownArticle(6, OTHER_FEED)})
    assert (intent.action, intent.article_id) == ("link", 6)


def test_no_link_when_the_feed_presents_the_url_as_several_items() -> None:
    items = [art("", HOME, "One"), art("", HOME, "Two")]
    assert actions(decide(items, by_url={HOME: KnownArticle(5, OTHER_FEED)})) == ["new", "new"]


def test_no_link_to_the_feeds_own_article_or_by_a_non_http_url() -> None:
    a = art("new-guid", "https://s.example/1", "Fresh item")
    assert actions(decide([a], by_url={a.url: KnownArticle(5, FEED)})) == ["new"]
    js = art("", "javascript:void(0)", "Deal")
    assert actions(decide([js], by_url={js.url: KnownArticle(5, OTHER_FEED)})) == ["new"]


def test_two_items_never_link_to_the_same_article() -> None:
    a = art("a", "https://s.example/1", "Same words", "x")
    b = art("b", "https://s.example/2", "Other", "y")
    found = KnownArticle(5, OTHER_FEED)
    got = decide([a, b], by_url={a.url: found}, by_hash={content_hash(b.title, b.text): found})
    assert actions(got) == ["link", "new"]


def test_lookup_keys_cover_every_form() -> None:
    ids = identify([art("", HOME, "One"), art("", HOME, "Two")], ["h1", "h2"])
    keys = lookup_keys(ids)
    assert f"{HOME}\nOne" in keys and HOME in keys


# ------------------------------------------------------------ on a real database


def rss_no_guid(items: list[tuple[str, str]]) -> bytes:
    body = "".join(
        f"<item><title>{escape(t)}</title><link>{escape(link)}</link><description>about {escape(t)}</description></item>"
        for t, link in items
    )
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Front page</title><link>{HOME}</link>'
            f"<description>d</description>{body}</channel></rss>").encode()


def test_a_poll_keeps_every_distinct_item_and_a_second_poll_stores_nothing(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    front = rss_no_guid([(f"Release {n}", HOME + f"#r{n % 2}") for n in range(6)])
    misused = rss([{"title": f"Item {n}", "link": f"https://s.example/{n}", "guid": "same"} for n in range(5)])
    js = rss([{"title": f"Deal {n}", "link": "javascript:void(0)", "guid": ""} for n in range(5)])
    for path, body in (("/front", front), ("/misused", misused), ("/js", js)):
        httpserver.expect_request(path).respond_with_data(body, content_type="application/rss+xml")
    urls = [httpserver.url_for(p) for p in ("/front", "/misused", "/js")]
    cfg = load_config(write_config(tmp_path, urls))
    first = poll_once(cfg, now=NOW)
    assert {f.url: f.new for f in first.feeds} == {urls[0]: 6, urls[1]: 5, urls[2]: 5}
    second = poll_once(cfg, now=NOW + timedelta(hours=1))
    assert (second.new, sum(f.updated for f in second.feeds), sum(f.linked for f in second.feeds)) == (0, 0, 0)
    with open_store(cfg, now=NOW) as store:
        assert store.counts()["articles"] == 16


def test_a_feed_that_repeats_another_feeds_front_page_link_is_not_folded_into_it(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/a").respond_with_data(rss_no_guid([("Only item", HOME)]), content_type="application/rss+xml")
    httpserver.expect_request("/b").respond_with_data(
        rss_no_guid([("First", HOME), ("Second", HOME)]), content_type="application/rss+xml")
    cfg = load_config(write_config(tmp_path, [httpserver.url_for("/a")]))
    poll_once(cfg, now=NOW)
    cfg = load_config(write_config(tmp_path, [httpserver.url_for("/a"), httpserver.url_for("/b")]))
    summary = poll_once(cfg, now=NOW + timedelta(hours=1))
    b = next(f for f in summary.feeds if f.url.endswith("/b"))
    assert (b.new, b.linked) == (2, 0)


# ------------------------------------------------------------ dates and poison


GOOD = [{"title": f"Good story {n}", "link": f"https://good.example/{n}", "text": "Plain words."} for n in range(3)]


def test_a_year_one_date_is_stored_as_first_seen_with_a_warning_and_the_round_goes_on(
    httpserver: HTTPServer, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    bad = rss([{"title": "Placeholder date", "link": "https://odd.example/1", "date": "Sat, 01 Jan 0001 00:00:00 GMT"},
               {"title": "Far future", "link": "https://odd.example/2", "date": "Fri, 01 Jan 2100 00:00:00 GMT"}])
    httpserver.expect_request("/bad").respond_with_data(bad, content_type="application/rss+xml")
    urls = [httpserver.url_for("/bad")]
    for n in range(8):
        items = [dict(g, link=f"{g['link']}-{n}", title=f"{g['title']} from feed {n}") for g in GOOD]
        httpserver.expect_request(f"/good{n}").respond_with_data(rss(items), content_type="application/rss+xml")
        urls.append(httpserver.url_for(f"/good{n}"))
    write_config(tmp_path, urls)
    proc = subprocess.run([sys.executable, "-m", "monitor", "poll"], cwd=tmp_path, env=subprocess_env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with Store(tmp_path / "data" / "monitor.db") as store:
        assert store.counts()["articles"] == 2 + 8 * 3
        rows = {r["url"]: r for r in store.iter_articles()}
        assert rows["https://odd.example/1"]["published_from_feed"] is False
        assert rows["https://odd.example/2"]["published_from_feed"] is False
        warning = store.last_warnings()[store.get_feed(urls[0]).id]
    assert "2 entries had dates before 1990 or more than a day ahead" in warning


POISON_ITEM = (
    "<item><title>{title}</title><link>https://poison.example/{n}</link><guid>{guid}</guid>"
    "<pubDate>{date}</pubDate><description>{text}</description>"
    "<comments>{number}</comments><enclosure url='https://poison.example/e' length='{number}' type='a/b'/></item>"
)
POISONS = [
    {"date": "Sat, 01 Jan 0001 00:00:00 GMT"},
    {"date": "Mon, 31 Dec 99999 23:59:59 GMT"},
    {"date": "-1"},
    {"number": str(10**400)},
    {"number": "-99999999999999999999999"},
    {"title": "control\x01\x02\x1b[31m chars"},
    {"title": "&#xD800; lone surrogate &#xDFFF;"},
    {"text": "&#0; nul reference"},
    {"title": "x" * 1_000_000},
    {"guid": "y" * 200_000},
    {"date": "Tue, 30 Feb 2026 25:61:61 +9999"},
]


def poison_feed() -> bytes:
    items = []
    for n, p in enumerate(POISONS):
        fields = {"title": f"Poison {n}", "guid": f"p{n}", "date": "Thu, 19 Nov 2026 10:00:00 GMT",
                  "text": "words", "number": "1", "n": n}
        fields.update(p)
        items.append(POISON_ITEM.format(**fields))
    good = "".join(POISON_ITEM.format(title=f"Fine {n}", guid=f"fine{n}", date="Thu, 19 Nov 2026 10:00:00 GMT",
                                      text="fine words", number="3", n=f"fine{n}") for n in range(3))
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Poison</title>'
            "<link>https://poison.example/</link><description>d</description>" + good + "".join(items)
            + "</channel></rss>").encode("utf-8", "surrogatepass")


def test_poison_values_in_every_field_lose_no_good_entry(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/poison").respond_with_data(poison_feed(), content_type="application/rss+xml")
    urls = [httpserver.url_for("/poison")]
    for n in range(3):
        items = [dict(g, link=f"{g['link']}-{n}", title=f"{g['title']} from feed {n}") for g in GOOD]
        httpserver.expect_request(f"/good{n}").respond_with_data(rss(items), content_type="application/rss+xml")
        urls.append(httpserver.url_for(f"/good{n}"))
    cfg = load_config(write_config(tmp_path, urls))
    summary = poll_once(cfg, now=NOW)
    by_url = {f.url: f for f in summary.feeds}
    assert all(by_url[u].status == "ok" and by_url[u].new == 3 for u in urls[1:])
    assert by_url[urls[0]].status == "ok", by_url[urls[0]].error
    with open_store(cfg, now=NOW) as store:
        stored = {r["url"] for r in store.iter_articles()}
        for r in store.iter_articles():
            assert len(r["title"]) <= 2000 and "\x1b" not in r["title"]
    assert {f"https://poison.example/fine{n}" for n in range(3)} <= stored
    # Every poison item is stored (dated when first seen where its date is not believable).
    assert by_url[urls[0]].new == 3 + len(POISONS)


def test_an_exception_on_one_entry_is_that_entrys_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    import monitor.pipeline as pipeline
    from rules import load_rules

    real = pipeline.to_article

    def broken_on_the_second(raw, **kw):  # type: ignore[no-untyped-def]
        if raw.title == "Good story 1":
            raise RuntimeError("a bug on one odd entry")
        return real(raw, **kw)

    monkeypatch.setattr(pipeline, "to_article", broken_on_the_second)
    ruleset = load_rules([Path(pipeline.__file__).parent.parent / "rules" / "partnership.toml"])
    got = pipeline.parse_clean_tag(ruleset, rss(GOOD), "https://good.example/feed", None, None, NOW)
    assert [a.title for a, _ in got.items] == ["Good story 0", "Good story 2"]
    assert got.warning is not None and "1 entries could not be read" in got.warning and "RuntimeError" in got.warning


def test_an_entry_sqlite_cannot_bind_is_left_out_and_named_the_rest_is_stored(store_target: Path | str) -> None:
    with storage.open_store(store_target) as store:
        f, _ = store.add_feed("http://127.0.0.1:9/f", now=NOW)
        items = [(art("a", "https://s.example/1", "Fine"), Tagging()),
                 (art("b", "https://s.example/2", "bad \ud800 title"), Tagging()),
                 (art("c", "https://s.example/3", "Also fine"), Tagging())]
        stats = save_poll(store, f, FeedUpdate(status="ok"), items, now=NOW)
        assert stats.new == 2 and store.counts()["articles"] == 2
        assert stats.warning is not None and "1 entries not stored" in stats.warning
        assert store.last_warnings()[f.id] == stats.warning


# ------------------------------------------------------------ the real corpus



@pytest.mark.skipif(not wellformed_corpus(), reason=f"feed corpus not found at {CORPUS} (it lives beside the project in CI)")
def test_every_wellformed_corpus_feed_stores_each_distinct_item_once(store_target: Path | str) -> None:
    """As many entries as distinct (id, link, title) items, or one more per same-guid edit; a second poll adds nothing."""
    fetched = datetime(2030, 1, 1, tzinfo=timezone.utc)
    short: list[str] = []
    with storage.open_store(store_target) as store:
        for n, name in enumerate(wellformed_corpus()):
            try:
                parsed = parse_feed((CORPUS / name).read_bytes(), "https://corpus.example/feed")
            except FeedError:
                continue  # the parse tests cover which files are feeds
            base = f"https://corpus.example/{n}/feed"
            arts = [to_article(raw, base_url=base, fetched_at=fetched) for raw in parsed.entries]
            lower = len({(a.guid, a.url, a.title) for a in arts})
            upper = len({(a.guid, a.url, a.title, content_hash(a.title, a.text)) for a in arts})
            f, _ = store.add_feed(base, now=fetched)
            items = [(a, Tagging()) for a in arts]
            save_poll(store, f, FeedUpdate(status="ok"), items, now=fetched)
            stored = store.db.execute("SELECT count(*) FROM entries WHERE feed_id = ?", (f.id,)).fetchone()[0]
            if not lower <= stored <= upper:
                short.append(f"{name}: {stored} stored of {lower}-{upper} distinct")
            again = save_poll(store, store.get_feed(base), FeedUpdate(status="ok"), items, now=fetched)
            if (again.new, again.updated, again.linked) != (0, 0, 0):
                short.append(f"{name}: second poll {again}")
    assert short == []


def test_an_entry_left_out_does_not_shift_the_story_keys_of_the_others(store_target: Path | str) -> None:
    from monitor.stories import story_key

    good = [art("a", "https://s.example/1", "Azure deal signed", "Microsoft and OpenAI sign."),
            art("c", "https://s.example/3", "Storm warning", "Heavy rain expected.")]
    bad = art("b", "https://s.example/2", "bad \ud800 title")
    items = [bad, *good]
    keys = [story_key(a.title, a.text, a.published) for a in items]
    with storage.open_store(store_target) as store:
        f, _ = store.add_feed("http://127.0.0.1:9/f", now=NOW)
        save_poll(store, f, FeedUpdate(status="ok"), [(a, Tagging()) for a in items], now=NOW, story_keys=keys)
        stored = dict(store.db.execute("SELECT url, signature FROM articles").fetchall())
    assert stored == {good[0].url: keys[1].signature, good[1].url: keys[2].signature}
