"""The store against real SQLite files: dedup, updates, links, atomic polls, search."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from core.errors import NotFound, StorageError
from core.types import Article, EntryIntent, Match, StoryKey, Tagging, content_hash
from monitor.ingest import save_poll
from storage import FeedUpdate, Store, open_store

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


def art(guid: str, url: str, title: str = "Title", text: str = "Body text", **kw: object) -> Article:
    return Article(
        guid=guid,
        url=url,
        link=url,
        title=title,
        author=str(kw.get("author", "")),
        published=kw.get("published", NOW - timedelta(hours=1)),  # type: ignore[arg-type]
        published_from_feed=True,
        summary_text=text,
    )


def tagged(score: float = 3.0, tags: tuple[str, ...] = ("ipo",)) -> Tagging:
    return Tagging(
        score=score,
        flagged=score >= 2,
        tags=list(tags),
        matches=[Match("openai-ipo", "IPO", "title", 0, 3)],
        tag_scores={t: score for t in tags},
    )


OK = FeedUpdate(status="ok", http_status=200, next_due=NOW + timedelta(minutes=30))


@pytest.fixture
def store(store_target: Path | str) -> Store:
    """The contract suite runs on both backends (conftest's store_target: SQLite, then PostgreSQL)."""
    s = open_store(store_target)
    yield s
    s.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Store:
    """For what only SQLite has (its query planner's output)."""
    s = Store(tmp_path / "m.db")
    yield s
    s.close()


def feed(store: Store, url: str = "http://127.0.0.1/a.xml"):
    f, _ = store.add_feed(url, now=NOW)
    return f


def test_opening_creates_schema_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "m.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"feeds", "articles", "entries", "article_tags", "fetch_log", "articles_fts", "_sqlite_migrations"} <= tables
    # Reopening applies nothing twice.
    applied = conn.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0]
    Store(path).close()
    assert conn.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0] == applied >= 2


def test_second_poll_with_same_entries_stores_nothing_new(store: Store) -> None:
    f = feed(store)
    items = [(art("g1", "https://news.example/a"), tagged()), (art("g2", "https://news.example/b"), Tagging())]
    first = save_poll(store, f, OK, items, now=NOW)
    second = save_poll(store, store.get_feed(f.url), OK, items, now=NOW + timedelta(minutes=30))
    assert (first.new, first.flagged) == (2, 1)
    assert (second.new, second.updated, second.linked, second.unchanged) == (0, 0, 0, 2)
    assert store.counts() == {"articles": 2, "flagged": 1}


def test_changed_entry_is_updated_in_place(store: Store) -> None:
    f = feed(store)
    save_poll(store, f, OK, [(art("g1", "https://news.example/a", title="Old"), Tagging())], now=NOW)
    stats = save_poll(store, f, OK, [(art("g1", "https://news.example/a", title="OpenAI IPO"), tagged())], now=NOW)
    assert (stats.new, stats.updated) == (0, 1)
    row = store.article("https://news.example/a")
    assert row["title"] == "OpenAI IPO"
    assert row["flagged"] and row["tags"] == ["ipo"]
    assert store.counts()["articles"] == 1


def test_same_canonical_url_from_another_feed_is_linked_not_stored_twice(store: Store) -> None:
    a, b = feed(store, "http://127.0.0.1/a.xml"), feed(store, "http://127.0.0.1/b.xml")
    save_poll(store, a, OK, [(art("a-1", "https://news.example/story"), tagged())], now=NOW)
    stats = save_poll(store, b, OK, [(art("b-9", "https://news.example/story", title="Other words"), tagged())], now=NOW)
    assert (stats.new, stats.linked) == (0, 1)
    assert store.counts()["articles"] == 1
    counts = store.feed_counts()
    assert counts[a.id] == 1 and counts[b.id] == 1  # both feeds delivered it


def test_word_for_word_copy_under_another_url_is_linked(store: Store) -> None:
    a, b = feed(store, "http://127.0.0.1/a.xml"), feed(store, "http://127.0.0.1/b.xml")
    save_poll(store, a, OK, [(art("a-1", "https://wire.example/1", "Deal  signed", "Same words."), tagged())], now=NOW)
    stats = save_poll(store, 
        b, OK, [(art("b-1", "https://paper.example/x", "Deal signed", "Same   words."), tagged())], now=NOW
    )
    assert stats.linked == 1 and store.counts()["articles"] == 1
    assert store.article("https://paper.example/x")["url"] == "https://wire.example/1"


def test_a_copy_does_not_overwrite_the_first_feeds_version(store: Store) -> None:
    a, b = feed(store, "http://127.0.0.1/a.xml"), feed(store, "http://127.0.0.1/b.xml")
    save_poll(store, a, OK, [(art("a-1", "https://news.example/s", "Original"), Tagging())], now=NOW)
    save_poll(store, b, OK, [(art("b-1", "https://news.example/s", "Original"), Tagging())], now=NOW)
    save_poll(store, b, OK, [(art("b-1", "https://news.example/s", "Rewritten by b"), Tagging())], now=NOW)
    assert store.article("https://news.example/s")["title"] == "Original"


def test_failure_half_way_through_a_poll_leaves_the_feed_as_before(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    f = feed(store)
    save_poll(store, f, OK, [(art("g0", "https://news.example/0"), Tagging())], now=NOW)
    before = store.get_feed(f.url)
    real = Store._apply_entry
    calls = {"n": 0}

    def failing(self: Store, *args: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise self._db_errors[0]("database or disk is full")  # the backend's own error type
        real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "_apply_entry", failing)
    items = [(art(f"g{i}", f"https://news.example/{i}"), tagged()) for i in range(1, 6)]
    update = FeedUpdate(status="ok", etag='"v2"', next_due=NOW + timedelta(hours=1))
    with pytest.raises(StorageError, match="disk is full"):
        save_poll(store, before, update, items, now=NOW + timedelta(minutes=5))
    monkeypatch.undo()
    assert store.counts() == {"articles": 1, "flagged": 0}
    after = store.get_feed(f.url)
    assert (after.etag, after.next_due, after.last_fetched) == (before.etag, before.next_due, before.last_fetched)
    assert store.db.execute("SELECT count(*) FROM fetch_log").fetchone()[0] == 1
    # And the same poll succeeds afterwards, with nothing duplicated.
    stats = save_poll(store, before, update, items, now=NOW + timedelta(minutes=6))
    assert stats.new == 5 and store.counts()["articles"] == 6


def test_error_update_records_failing_since_and_keeps_it(store: Store) -> None:
    f = feed(store)
    err = FeedUpdate(status="error", http_status=500, error="HTTP 500", error_count=1, next_due=NOW)
    save_poll(store, f, err, [], now=NOW)
    save_poll(store, f, FeedUpdate(status="error", error="HTTP 500", error_count=2, next_due=NOW), [], now=NOW + timedelta(hours=1))
    row = store.get_feed(f.url)
    assert (row.error_count, row.failing_since, row.last_error) == (2, NOW.isoformat(), "HTTP 500")
    save_poll(store, f, OK, [], now=NOW + timedelta(hours=2))
    row = store.get_feed(f.url)
    assert (row.error_count, row.failing_since, row.last_error) == (0, None, None)


def test_permanent_redirect_moves_the_feed_url_but_keeps_its_origin(store: Store) -> None:
    f = feed(store, "http://127.0.0.1/old.xml")
    save_poll(store, f, FeedUpdate(status="ok", new_url="http://127.0.0.1/new.xml"), [], now=NOW)
    moved = store.get_feed("http://127.0.0.1/old.xml")
    assert moved.url == "http://127.0.0.1/new.xml" and moved.origin_url == "http://127.0.0.1/old.xml"
    # The config still names the old URL: syncing must not add it again.
    store.sync_configured_feeds([("http://127.0.0.1/old.xml", None, None)], now=NOW)
    assert [x.url for x in store.list_feeds()] == ["http://127.0.0.1/new.xml"]


def test_feeds_due_skips_disabled_removed_and_not_yet_due(store: Store) -> None:
    due = feed(store, "http://127.0.0.1/due.xml")
    later = feed(store, "http://127.0.0.1/later.xml")
    gone = feed(store, "http://127.0.0.1/gone.xml")
    removed = feed(store, "http://127.0.0.1/removed.xml")
    save_poll(store, later, FeedUpdate(status="ok", next_due=NOW + timedelta(hours=1)), [], now=NOW)
    save_poll(store, gone, FeedUpdate(status="gone", disabled="gone", next_due=NOW), [], now=NOW)
    store.remove_feed(removed.url)
    assert [f.url for f in store.feeds_due(NOW)] == [due.url]
    store.reset_feed(gone.url, now=NOW)
    assert {f.url for f in store.feeds_due(NOW)} == {due.url, gone.url}


def test_sync_retires_config_feeds_no_longer_listed_but_not_cli_ones(store: Store) -> None:
    store.sync_configured_feeds([("http://127.0.0.1/c1", "C1", None), ("http://127.0.0.1/c2", None, 900)], now=NOW)
    store.add_feed("http://127.0.0.1/cli", now=NOW)
    store.sync_configured_feeds([("http://127.0.0.1/c2", None, 600)], now=NOW)
    assert {f.url: f.interval for f in store.list_feeds()} == {"http://127.0.0.1/c2": 600, "http://127.0.0.1/cli": None}


def test_search_finds_phrases_and_survives_bad_syntax(store: Store) -> None:
    f = feed(store)
    save_poll(store, 
        f,
        OK,
        [
            (art("1", "https://n.example/1", "OpenAI weighs a public benefit corporation", "The board met."), tagged()),
            (art("2", "https://n.example/2", "Azure outage", "Public cloud benefit corporation no"), Tagging()),
        ],
        now=NOW,
    )
    hits = store.search('"public benefit corporation"')
    assert [h["url"] for h in hits] == ["https://n.example/1"]
    assert store.search('"unbalanced') == []  # literal fallback, no exception
    assert {h["url"] for h in store.search("benefit corporation")} == {"https://n.example/1", "https://n.example/2"}


def _fts_consistent(store: Store) -> bool:
    """FTS5's own check of the index against the articles table (raises on a corrupt index).

    PostgreSQL has no separate index table to drift (its GIN index follows the
    rows); there the searches the tests make are the check."""
    if not store._fts_batched:
        return True
    store.db.execute("INSERT INTO articles_fts (articles_fts, rank) VALUES ('integrity-check', 1)")
    return store.db.execute("SELECT count(*) FROM articles_fts").fetchone()[0] == store.counts()["articles"]


def test_search_index_takes_a_batch_at_commit_and_drops_a_rolled_back_feed(store: Store) -> None:
    a, b = feed(store, "http://127.0.0.1/a.xml"), feed(store, "http://127.0.0.1/b.xml")
    with store.transaction():
        save_poll(store, a, OK, [(art("1", "https://a.example/1", "Quarterly gigawatt contract"), Tagging())], now=NOW)
        with pytest.raises(RuntimeError), store.transaction():  # feed b's savepoint fails after its write
            save_poll(store, b, OK, [(art("2", "https://b.example/2", "Gigawatt rumour"), Tagging())], now=NOW)
            raise RuntimeError("b failed")
        # An edit of an article this same transaction added: the index gets the edited words only.
        save_poll(store, a, OK, [(art("1", "https://a.example/1", "Quarterly gigawatt contract signed"), Tagging())],
                  now=NOW)
    assert [h["url"] for h in store.search("gigawatt")] == ["https://a.example/1"]
    assert [h["url"] for h in store.search("signed")] == ["https://a.example/1"]
    assert store.meta("fts_pending_from") is None
    assert _fts_consistent(store)
    # b's next poll stores and indexes its article; a later edit re-indexes, a prune takes it out.
    save_poll(store, b, OK, [(art("2", "https://b.example/2", "Gigawatt rumour"), Tagging())], now=NOW)
    save_poll(store, b, OK, [(art("2", "https://b.example/2", "Gigawatt rumour denied"), Tagging())], now=NOW)
    assert {h["url"] for h in store.search("gigawatt")} == {"https://a.example/1", "https://b.example/2"}
    assert [h["url"] for h in store.search("denied")] == ["https://b.example/2"]
    assert _fts_consistent(store)


def test_flagged_between_is_half_open_typed_and_in_published_order(store: Store) -> None:
    f = feed(store)
    day = datetime(2026, 11, 19, tzinfo=timezone.utc)
    save_poll(store, 
        f,
        OK,
        [
            (art("a", "https://n.example/a", published=day), tagged(2.5)),
            (art("b", "https://n.example/b", published=day + timedelta(hours=23, minutes=59)), tagged(5.0)),
            (art("c", "https://n.example/c", published=day + timedelta(days=1)), tagged(9.0)),
            (art("d", "https://n.example/d", published=day + timedelta(hours=3)), Tagging()),
        ],
        now=NOW,
    )
    rows = store.flagged_between(day, day + timedelta(days=1))
    # Published order: ranking is monitor.digest.select's one formula, not the store's ORDER BY.
    assert [r.url for r in rows] == ["https://n.example/a", "https://n.example/b"]
    assert rows[1].matches == [Match("openai-ipo", "IPO", "title", 0, 3)] and rows[1].score == 5.0


def test_flagged_day_query_uses_the_partial_index(sqlite_store: Store) -> None:
    plan = sqlite_store.db.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM articles a WHERE a.flagged = 1 AND a.published >= ? AND a.published < ?",
        ("2026-11-19", "2026-11-20"),
    ).fetchall()
    assert any("idx_articles_flagged_day" in str(row) for row in plan), plan


def test_retag_records_added_and_removed_tags(store: Store) -> None:
    f = feed(store)
    stats = save_poll(store, f, OK, [(art("1", "https://n.example/1"), tagged(3, ("ipo", "pbc")))], now=NOW)
    aid = stats.new_ids[0]
    added, removed = store.retag(aid, tagged(3, ("ipo", "lawsuit")), now=NOW, rules_version="v2")
    assert (added, removed) == ({"lawsuit"}, {"pbc"})
    assert [(c["tag"], c["change"]) for c in store.tag_changes(aid)] == [("lawsuit", "added"), ("pbc", "removed")]
    tags = store.db.execute("SELECT tag FROM article_tags WHERE article_id = ? ORDER BY tag", (aid,)).fetchall()
    assert [t[0] for t in tags] == ["ipo", "lawsuit"]


def test_article_lookup_by_id_url_or_unknown(store: Store) -> None:
    f = feed(store)
    stats = save_poll(store, f, OK, [(art("1", "https://n.example/1"), Tagging())], now=NOW)
    assert store.article(str(stats.new_ids[0]))["url"] == "https://n.example/1"
    with pytest.raises(NotFound):
        store.article("https://n.example/missing")


def test_a_file_that_is_not_a_database_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "m.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match="m.db"):
        Store(bad)


def test_one_feed_repeating_the_same_words_under_new_urls_keeps_both(store: Store) -> None:
    f = feed(store)
    items = [(art("e1", "https://pod.example/1", "Episode notes", ""), Tagging()),
             (art("e2", "https://pod.example/2", "Episode notes", ""), Tagging())]
    assert save_poll(store, f, OK, items, now=NOW).new == 2


def test_prune_keeps_flagged_and_recent_articles(store: Store) -> None:
    f = feed(store)
    old = NOW - timedelta(days=100)
    save_poll(store, 
        f,
        OK,
        [
            (art("old-plain", "https://n.example/1", "Old plain", published=old), Tagging()),
            (art("old-flagged", "https://n.example/2", "Old flagged", published=old), tagged()),
        ],
        now=old,
    )
    save_poll(store, f, OK, [(art("new-plain", "https://n.example/3", "New plain"), Tagging())], now=NOW)
    assert store.prune(before=NOW - timedelta(days=90)) == 1
    assert {r["title"] for r in store.iter_articles()} == {"Old flagged", "New plain"}
    assert store.search("plain")[0]["title"] == "New plain"  # FTS follows the delete
    assert _fts_consistent(store)
    assert store.db.execute("SELECT count(*) FROM entries").fetchone()[0] == 2
    store.maintain()


def test_digest_records_keep_delivery_state_across_rebuilds(store: Store) -> None:
    store.record_digest("2026-11-19", generated_at=NOW, items=3, paths=["a.md"])
    store.record_delivery("2026-11-19", at=NOW, error="SMTP refused")
    assert [d["day"] for d in store.undelivered_digests()] == ["2026-11-19"]
    store.record_delivery("2026-11-19", at=NOW, error=None)
    store.record_digest("2026-11-19", generated_at=NOW, items=4, paths=["a.md"])
    d = store.digest("2026-11-19")
    assert d and d["items"] == 4 and d["delivered_at"] == NOW.isoformat() and d["delivery_error"] is None
    assert store.undelivered_digests() == []


def test_an_older_database_is_migrated_in_place_keeping_its_rows(tmp_path: Path) -> None:
    from sqlite_utils import Database

    from storage.schema import migrations

    path = tmp_path / "old.db"
    db = Database(path)
    migrations.apply(db, stop_before="m002_stories")
    db.execute("INSERT INTO feeds (url, origin_url, added_at) VALUES ('http://127.0.0.1/x', 'http://127.0.0.1/x', '2026-01-01')")
    db.conn.commit()
    db.close()
    with Store(path) as store:
        assert [f.url for f in store.list_feeds()] == ["http://127.0.0.1/x"]
        cols = {c.name for c in store.db.table("articles").columns}
        assert {"story_id", "signature"} <= cols


def _m005_database(target: Path | str) -> tuple[Any, Any]:
    """A database of either backend migrated up to m005 (text band keys): (execute(sql, params), done())."""
    if isinstance(target, Path):
        from sqlite_utils import Database

        from storage.schema import migrations

        db = Database(target)
        migrations.apply(db, stop_before="m006_band_integers")

        def done() -> None:
            db.conn.commit()
            db.close()

        return db.execute, done
    import psycopg

    from storage.pg_schema import MIGRATIONS, T

    conn = psycopg.connect(target, autocommit=True)
    conn.execute(f"CREATE TABLE _migrations (name {T} PRIMARY KEY, applied_at {T} NOT NULL)")
    for name, statements in MIGRATIONS:
        if name == "m006_band_integers":
            break
        for sql in statements:
            conn.execute(sql)
        conn.execute("INSERT INTO _migrations VALUES (%s, %s)", (name, NOW.isoformat()))
    return (lambda sql, params=(): conn.execute(sql.replace("?", "%s"), params)), conn.close


def test_text_band_keys_of_an_older_database_become_integer_keys_that_new_articles_meet(store_target: Path | str) -> None:
    import hashlib
    import struct

    from monitor import stories as st

    title, text = "OpenAI signs cloud deal with Oracle", "OpenAI agreed a five-year compute contract with Oracle worth billions"
    published = NOW - timedelta(hours=5)
    key = st.story_key(title, text, published)
    sig = st.signature(st.unpack(key.signature))
    # The writer of m002..m005 stored "{period}/{band}:{hex}" for the article's period and the next.
    p = st.period(published)
    old_keys = [f"{q}/{i}:{hashlib.blake2b(struct.pack('<2I', *sig[2 * i:2 * i + 2]), digest_size=6).hexdigest()}"
                for q in (p, p + 1) for i in range(st.BANDS)]
    execute, done = _m005_database(store_target)
    execute("INSERT INTO feeds (url, origin_url, added_at) VALUES ('http://127.0.0.1/x', 'http://127.0.0.1/x', ?)",
            [NOW.isoformat()])
    execute("INSERT INTO stories (first_seen, last_seen) VALUES (?, ?)", [published.isoformat()] * 2)
    execute(
        "INSERT INTO articles (feed_id, guid, url, link, title, published, published_from_feed, first_seen, "
        "updated_at, summary_text, content_hash, story_id, signature) VALUES (1, 'g', 'https://x.example/1', "
        "'https://x.example/1', ?, ?, 1, ?, ?, ?, 'h', 1, ?)",
        [title, published.isoformat(), NOW.isoformat(), NOW.isoformat(), text, key.signature],
    )
    for k in old_keys:
        execute("INSERT INTO story_bands VALUES (?, 1)", [k])
    done()
    with open_store(store_target) as store:
        stored = [k for (k,) in store.db.execute("SELECT band_key FROM story_bands ORDER BY band_key").fetchall()]
        assert stored == sorted(key.band_keys)  # converted exactly: the article's own period only
        f = store.add_feed("http://127.0.0.1/y", now=NOW)[0]
        rewrite = art("r", "https://y.example/2", title, text + " to train its models")
        save_poll(store, f, OK, [(rewrite, Tagging())], now=NOW,
                  story_keys=[st.story_key(rewrite.title, rewrite.text, rewrite.published)])
        stories = dict(store.db.execute("SELECT url, story_id FROM articles").fetchall())
        assert stories == {"https://x.example/1": 1, "https://y.example/2": 1}


def test_iter_articles_since_uses_first_seen_and_pages_through_everything(store: Store) -> None:
    f = feed(store)
    old, new = NOW - timedelta(days=40), NOW
    save_poll(store, f, OK, [(art(f"o{i}", f"https://n.example/o{i}", f"Old {i}"), Tagging()) for i in range(7)], now=old)
    save_poll(store, f, OK, [(art(f"n{i}", f"https://n.example/n{i}", f"New {i}"), Tagging()) for i in range(5)], now=new)
    assert len(list(store.iter_articles(batch=3))) == 12
    recent = [r["title"] for r in store.iter_articles(since=NOW - timedelta(days=30), batch=2)]
    assert recent == [f"New {i}" for i in range(5)]


def _intent(a: Article, key: StoryKey, *, story_id: int | None = None, new_story: int | None = None) -> EntryIntent:
    return EntryIntent("new", a.guid, a, Tagging(), content_hash(a.title, a.text), story=key,
                       story_id=story_id, new_story=new_story)


def test_story_candidates_are_found_through_shared_band_keys_within_the_window(store: Store) -> None:
    a, b = feed(store, "http://127.0.0.1/a.xml"), feed(store, "http://127.0.0.1/b.xml")
    k1 = StoryKey(b"sig1", (10, 11))
    k2 = StoryKey(b"sig2", (20, 11))  # shares band 1 with k1
    k3 = StoryKey(b"sig3", (30, 31))  # shares nothing
    s1 = store.apply_poll(a, OK, [_intent(art("1", "https://a.example/1", "Deal"), k1, new_story=0)], now=NOW)
    first = s1.new_ids[0]
    assert [c.id for c in store.story_candidates(k2.band_keys, around=NOW, window=timedelta(days=3))] == [first]
    assert store.story_candidates(k3.band_keys, around=NOW, window=timedelta(days=3)) == []
    # Too far apart in time: the band is shared but the window excludes it.
    assert store.story_candidates(k2.band_keys, around=NOW + timedelta(days=7), window=timedelta(days=3)) == []
    story = store.story_candidates(k2.band_keys, around=NOW, window=timedelta(days=3))[0].story_id
    s2 = store.apply_poll(b, OK, [_intent(art("2", "https://b.example/2", "Deal, told again"), k2, story_id=story),
                                  _intent(art("3", "https://b.example/3", "Other news"), k3, new_story=0),
                                  _intent(art("5", "https://b.example/5", "Other news again"), k3, new_story=0)],
                          now=NOW)
    ids = {r["url"]: r for r in store.iter_articles()}
    assert ids["https://a.example/1"]["story_id"] == ids["https://b.example/2"]["story_id"] == story
    # Two articles of one batch that start one story share the one row made for it.
    assert ids["https://b.example/3"]["story_id"] == ids["https://b.example/5"]["story_id"] != story
    members = dict(store.db.execute("SELECT id, members FROM stories").fetchall())
    assert members == {story: 2, ids["https://b.example/3"]["story_id"]: 2} and s2.new == 3


def test_story_candidates_are_capped_most_shared_bands_first(store: Store) -> None:
    f = feed(store)
    keys = [StoryKey(f"s{i}".encode(), (1, 100 + i)) for i in range(30)]  # 1: a band every article has
    close = StoryKey(b"close", (1, 2, 3))
    items = [art(f"g{i}", f"https://n.example/{i}", f"Item {i}") for i in range(30)]
    items.append(art("close", "https://n.example/close", "Close one"))
    store.apply_poll(f, OK, [_intent(a, k, new_story=n) for n, (a, k) in enumerate(zip(items, [*keys, close]))],
                     now=NOW)
    found = store.story_candidates([1, 2, 3], around=NOW, window=timedelta(days=3), limit=5)
    assert len(found) == 5
    assert found[0].title == "Close one"




def test_a_nul_in_a_feeds_text_is_stored_and_the_article_found(store: Store) -> None:
    """A JSON Feed may carry U+0000 in its HTML; PostgreSQL's text cannot hold it (it becomes U+FFFD there)."""
    f = feed(store)
    a = art("nul", "https://n.example/nul", "Title with a \x00 NUL", "Body \x00 words")
    a.content_html = "<p>x\x00y</p>"
    stats = save_poll(store, f, OK, [(a, tagged())], now=NOW)
    assert stats.new == 1
    row = store.article("https://n.example/nul")
    nul = "\x00" if isinstance(store.target, Path) else "\ufffd"
    assert row["title"] == f"Title with a {nul} NUL" and row["content_html"] == f"<p>x{nul}y</p>"
    assert [h["url"] for h in store.search("words")] == ["https://n.example/nul"]
