"""The SQLite store: feeds, articles, how they were tagged, and the fetch log.

A DAO with intent-named methods. Methods that need "now" take it as an
argument. Each feed's poll is written in one transaction (`save_poll`), so a
crash mid-poll leaves that feed exactly as it was before.

It must not fetch, parse or evaluate rules: it stores what it is given.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from core.errors import NotFound, StorageError
from core.types import (
    Article,
    EntryIntent,
    FlaggedArticle,
    KnownArticle,
    KnownEntry,
    Match,
    StoryCandidate,
    StoryMember,
    Tagging,
    combined_text,
)
from storage.schema import migrations


def iso(t: datetime) -> str:
    """Stored form of a time: UTC, seconds, with offset. Sorts lexically."""
    if t.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    return t.astimezone(timezone.utc).isoformat(timespec="seconds")


def parse_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass
class Feed:
    id: int
    url: str
    origin_url: str
    name: str | None
    title: str | None
    interval: int | None
    source: str
    etag: str | None
    last_modified: str | None
    last_status: str
    http_status: int | None
    last_error: str | None
    error_count: int
    failing_since: str | None
    last_fetched: str | None
    last_ok: str | None
    next_due: str | None
    disabled: str | None
    removed: int
    added_at: str
    site_url: str | None = None
    full_text: int = 0  # 1: retrieve each new entry's page (monitor.fulltext)
    category: str | None = None  # the OPML folder it was filed under

    @property
    def display_name(self) -> str:
        return display_name(self.name, self.title, self.url)


def display_name(name: str | None, title: str | None, url: str) -> str:
    """A feed's name as shown everywhere: the configured name, else the feed's own title, else its URL.

    FEED_NAME_SQL is the same rule for queries that join the feeds table as `f`.
    """
    return name or title or url


FEED_NAME_SQL = "coalesce(nullif(f.name, ''), nullif(f.title, ''), f.url)"


@dataclass
class FeedUpdate:
    """What one poll changes on the feed row (decided by the pipeline)."""

    status: str  # ok | not_modified | error | throttled | gone | paused
    http_status: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None
    warning: str | None = None
    error_count: int = 0
    next_due: datetime | None = None
    disabled: str | None = None
    new_url: str | None = None
    title: str | None = None
    site_url: str | None = None
    bytes: int = 0
    elapsed: float = 0.0


@dataclass
class SaveStats:
    new: int = 0
    updated: int = 0
    linked: int = 0
    unchanged: int = 0
    flagged: int = 0
    new_ids: list[int] = field(default_factory=list)
    warning: str | None = None  # the feed warning as stored (entries left out are named in it)


_FEED_COLUMNS = (
    "id, url, origin_url, name, title, interval, source, etag, last_modified, last_status, http_status, "
    "last_error, error_count, failing_since, last_fetched, last_ok, next_due, disabled, removed, added_at, site_url, "
    "full_text, category"
)


def _match_to_json(m: Match) -> dict[str, Any]:
    return {"rule": m.rule, "term": m.term, "field": m.field, "start": m.start, "end": m.end}


def _tagging_values(t: Tagging) -> tuple[float, int, str, str, str]:
    """score, flagged, tags, tag_scores, matches: a Tagging as the articles columns hold it."""
    return (
        t.score,
        int(t.flagged),
        json.dumps(t.tags),
        json.dumps(t.tag_scores),
        json.dumps([_match_to_json(m) for m in t.matches]),
    )


def _chunks(values: list[str], size: int = 500) -> Iterator[list[str]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


def matches_from_json(text: str) -> list[Match]:
    return [Match(**m) for m in json.loads(text or "[]")]


def _storage_error(exc: sqlite3.Error, path: Path) -> StorageError:
    msg = str(exc)
    if "disk is full" in msg or "disk I/O" in msg:
        return StorageError(f"{path}: cannot write: {msg} (free some space; nothing already stored was lost)")
    if "locked" in msg:
        return StorageError(f"{path}: database is locked by another process ({msg})")
    if "not a database" in msg or "malformed" in msg:
        return StorageError(f"{path}: not a usable database: {msg}")
    return StorageError(f"{path}: {msg}")


class Store:
    """One connection to the monitor database. Not shared between threads."""

    # Dialect hooks, so storage.postgres.PgStore shares this class's SQL: the database errors
    # `transaction()` turns into StorageError, and the two-argument min/max functions.
    _db_errors: tuple[type[BaseException], ...] = (sqlite3.Error,)
    _least, _greatest = "min", "max"
    # SQLite's FTS5 index takes a transaction's new articles at its commit (m006); PostgreSQL's GIN
    # index follows the rows by itself.
    _fts_batched = True
    _fts_pending = False  # new articles wait for the search index (see _index_new_articles)

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.target: Path | str = self.path  # what storage.open_store opens again (another thread's connection)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=30)
            self.db = Database(conn)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            # The story-band index takes 48 random inserts per article: with the default 2 MB
            # page cache a busy window no longer fits (measured 0.87 -> 0.80 ms per stored article
            # at 10k articles).
            conn.execute("PRAGMA cache_size=-65536")
            migrations.apply(self.db)
        except sqlite3.Error as exc:
            raise _storage_error(exc, self.path) from None
        except OSError as exc:
            raise StorageError(f"{self.path}: cannot open: {exc.strerror or exc}") from None

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- feeds

    def _feed_rows(self, where: str = "removed = 0", params: Sequence[Any] = ()) -> list[Feed]:
        cur = self.db.execute(f"SELECT {_FEED_COLUMNS} FROM feeds WHERE {where} ORDER BY id", params)
        cols = [d[0] for d in cur.description]
        return [Feed(**dict(zip(cols, row))) for row in cur.fetchall()]

    def list_feeds(self) -> list[Feed]:
        return self._feed_rows()

    def get_feed(self, url: str) -> Feed:
        rows = self._feed_rows("removed = 0 AND (url = ? OR origin_url = ?)", (url, url))
        if not rows:
            raise NotFound(f"no feed with URL {url}")
        return rows[0]

    def add_feed(
        self, url: str, *, now: datetime, name: str | None = None, interval: int | None = None, source: str = "cli"
    ) -> tuple[Feed, bool]:
        """Add a feed (or bring back a removed one). Returns (feed, created)."""
        with self._writing():
            self._set_meta("configured_feeds", None)  # the next sync of the config looks again
            existing = self._feed_rows("url = ? OR origin_url = ?", (url, url))
            if existing:
                feed = existing[0]
                if not feed.removed:
                    return feed, False
                self.db.execute(
                    "UPDATE feeds SET removed = 0, name = coalesce(?, name), interval = ?, source = ?, "
                    "next_due = ? WHERE id = ?",
                    (name, interval, source, iso(now), feed.id),
                )
            else:
                self.db.execute(
                    "INSERT INTO feeds (url, origin_url, name, interval, source, next_due, added_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (url, url, name, interval, source, iso(now), iso(now)),
                )
        return self.get_feed(url), True

    def remove_feed(self, url: str) -> Feed:
        """Stop polling a feed. Its articles stay: they are history."""
        feed = self.get_feed(url)
        with self._writing():
            self._set_meta("configured_feeds", None)  # a configured feed removed by hand comes back on the next sync
            self.db.execute("UPDATE feeds SET removed = 1 WHERE id = ?", (feed.id,))
        return feed

    def reset_feed(self, url: str, *, now: datetime) -> Feed:
        """Clear errors, backoff and pause so the feed is polled on the next round."""
        feed = self.get_feed(url)
        with self._writing():
            self.db.execute(
                "UPDATE feeds SET error_count = 0, disabled = NULL, failing_since = NULL, last_error = NULL, "
                "last_status = CASE WHEN last_status IN ('paused', 'gone', 'error') THEN 'new' ELSE last_status END, "
                "next_due = ? WHERE id = ?",
                (iso(now), feed.id),
            )
        return self.get_feed(url)

    def sync_configured_feeds(self, specs: Iterable[tuple[str, str | None, int | None]], *, now: datetime) -> None:
        """Make the feeds listed in the configuration present; retire config feeds no longer listed.

        Feeds added from the CLI or OPML are left alone. A configured feed
        that has since moved (301/308) is found by the URL it was added with.
        One pass over the feeds table, and nothing at all when the list is
        the one synced last time (its fingerprint is kept in `meta`; adding
        or removing a feed by hand clears it, so the next sync looks again).
        """
        specs = list(specs)
        fingerprint = hashlib.sha256(json.dumps(specs).encode("utf-8", "surrogatepass")).hexdigest()
        row = self.db.execute("SELECT value FROM meta WHERE key = 'configured_feeds'").fetchone()
        if row is not None and row[0] == fingerprint:
            return
        with self._writing():
            rows = self.db.execute("SELECT id, url, origin_url, name, interval, source, removed FROM feeds").fetchall()
            by_url: dict[str, tuple[Any, ...]] = {}
            for r in rows:
                by_url.setdefault(r[1], r)
            for r in rows:
                by_url.setdefault(r[2], r)
            wanted: set[int] = set()
            updates: list[tuple[Any, ...]] = []
            inserts: list[tuple[Any, ...]] = []
            for url, name, interval in specs:
                found = by_url.get(url)
                if found is None:
                    inserts.append((url, url, name, interval, iso(now), iso(now)))
                    continue
                wanted.add(found[0])
                if (found[3], found[4], found[5], found[6]) != (name, interval, "config", 0):
                    updates.append((name, interval, found[0]))
            self.db.conn.executemany(
                "UPDATE feeds SET name = ?, interval = ?, source = 'config', removed = 0 WHERE id = ?", updates
            )
            self.db.conn.executemany(
                "INSERT INTO feeds (url, origin_url, name, interval, source, next_due, added_at) "
                "VALUES (?, ?, ?, ?, 'config', ?, ?)",
                inserts,
            )
            retired = [(r[0],) for r in rows if r[5] == "config" and not r[6] and r[0] not in wanted]
            self.db.conn.executemany("UPDATE feeds SET removed = 1 WHERE id = ?", retired)
            self._set_meta("configured_feeds", fingerprint)

    def _set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self.db.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            self.db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def set_feed_options(self, options: Iterable[tuple[str, bool, str | None]]) -> None:
        """Set (url, full_text, category) on these feeds (found by current or original URL); others are left alone."""
        with self._writing():
            self.db.conn.executemany(
                "UPDATE feeds SET full_text = ?1, category = ?2 WHERE id IN "
                "(SELECT id FROM feeds WHERE url = ?3 UNION SELECT id FROM feeds WHERE origin_url = ?3) "
                "AND (full_text IS NOT ?1 OR category IS NOT ?2)",
                [(int(full), category, url) for url, full, category in options],
            )

    def feeds_due(self, now: datetime) -> list[Feed]:
        """Feeds to poll now: active, not disabled, and due (or never polled)."""
        return self._feed_rows(
            "removed = 0 AND disabled IS NULL AND (next_due IS NULL OR next_due <= ?)", (iso(now),)
        )

    def next_due(self) -> datetime | None:
        row = self.db.execute(
            "SELECT min(next_due) FROM feeds WHERE removed = 0 AND disabled IS NULL"
        ).fetchone()
        return parse_iso(row[0]) if row and row[0] else None

    # ------------------------------------------------------------- polling

    def transaction(self) -> Any:
        """One write transaction (nested: a savepoint); SQLite failures become a StorageError."""
        return self._writing()

    def feed_entry_keys(self, feed_id: int) -> frozenset[str]:
        """Every identity key and URL this feed's entries are stored under."""
        rows = self.db.execute("SELECT guid, url FROM entries WHERE feed_id = ?", (feed_id,)).fetchall()
        return frozenset(v for row in rows for v in row if v)
    def hold_identity_lock(self) -> None:
        """Inside a write transaction: no other writer reads or decides identities until it ends.

        What the decider reads (known entries, articles by URL and by hash,
        story candidates) must not change under it before it writes, or two
        writers polling feeds that carry the same article both store it.
        SQLite's write transaction (BEGIN IMMEDIATE) already admits one
        writer at a time, so there is nothing more to hold here.
        """

    def in_transaction(self) -> bool:
        """Whether a transaction is open (SQLite rolls one back by itself on a full disk or an I/O error)."""
        return self.db.conn.in_transaction

    def known_entries(self, feed_id: int, keys: Sequence[str]) -> dict[str, KnownEntry]:
        """This feed's entries stored under any of these identity keys, with their article's version."""
        found: dict[str, KnownEntry] = {}
        keys = list(dict.fromkeys(keys))
        for chunk in _chunks(keys):
            rows = self.db.execute(
                "SELECT e.guid, e.article_id, a.content_hash, a.title, a.url, a.feed_id FROM entries e "
                f"JOIN articles a ON a.id = e.article_id WHERE e.feed_id = ? AND e.guid IN ({_marks(chunk)})",
                (feed_id, *chunk),
            ).fetchall()
            for key, article_id, digest, title, url, owner in rows:
                found[key] = KnownEntry(key, article_id, digest, title, url, owner)
        return found

    def articles_by_url(self, urls: Iterable[str]) -> dict[str, KnownArticle]:
        """The first stored article with each canonical URL."""
        found: dict[str, KnownArticle] = {}
        for chunk in _chunks(list(urls)):
            rows = self.db.execute(
                f"SELECT url, min(id), feed_id FROM articles WHERE url IN ({_marks(chunk)}) GROUP BY url", chunk
            ).fetchall()
            found.update({url: KnownArticle(article_id, feed_id) for url, article_id, feed_id in rows})
        return found

    def full_texts_by_url(self, urls: Iterable[str]) -> dict[str, tuple[str, str | None]]:
        """(full_text, full_text_error) of the first stored article with each canonical URL.

        A URL found here is not fetched again: its page was retrieved (or
        tried) when the article was first stored.
        """
        found: dict[str, tuple[str, str | None]] = {}
        for chunk in _chunks(list(urls)):
            rows = self.db.execute(
                "SELECT a.url, a.full_text, a.full_text_error FROM articles a JOIN "
                f"(SELECT min(id) AS id FROM articles WHERE url IN ({_marks(chunk)}) GROUP BY url) first "
                "ON first.id = a.id",
                chunk,
            ).fetchall()
            found.update({url: (text, error) for url, text, error in rows})
        return found

    def articles_by_hash(self, hashes: Iterable[str], *, other_than_feed: int) -> dict[str, KnownArticle]:
        """The first stored article of another feed with each content hash."""
        found: dict[str, KnownArticle] = {}
        for chunk in _chunks(list(hashes)):
            rows = self.db.execute(
                f"SELECT content_hash, min(id), feed_id FROM articles WHERE content_hash IN ({_marks(chunk)}) "
                "AND feed_id != ? GROUP BY content_hash",
                (*chunk, other_than_feed),
            ).fetchall()
            found.update({h: KnownArticle(article_id, feed_id) for h, article_id, feed_id in rows})
        return found

    def apply_poll(
        self,
        feed: Feed,
        update: FeedUpdate,
        intents: Sequence[EntryIntent],
        *,
        now: datetime,
        rules_version: str | None = None,
        dropped: Sequence[str] = (),
    ) -> SaveStats:
        """Write a decided poll: its entries, the feed's new state and a log row, in one transaction.

        `dropped` names entries the caller left out (values SQLite cannot
        bind): they are said in the feed's warning. A database failure rolls
        the whole feed back.
        """
        stats = SaveStats()
        dropped = list(dropped)
        with self._writing():
            if self._fts_batched and any(i.action == "new" for i in intents):
                # Where this transaction's new articles start: the search index takes them at the
                # commit (see _index_new_articles); a savepoint that rolls back takes the mark with it.
                self.db.execute(
                    "INSERT OR IGNORE INTO meta (key, value) "
                    "SELECT 'fts_pending_from', coalesce(max(id), 0) + 1 FROM articles"
                )
                self._fts_pending = True
            pending_stories: dict[int, int] = {}
            # Rows keyed by the new articles' ids go in one executemany each after the loop: fewer
            # statements per article (each one gives the GIL away, and the writer shares it with
            # the fetch threads).
            later: dict[str, list[tuple[Any, ...]]] = {"entries": [], "bands": [], "tags": []}
            for intent in intents:
                self._apply_entry(feed, intent, now, rules_version, stats, pending_stories, later)
            conn = self.db.conn
            conn.executemany(
                "INSERT INTO entries (feed_id, guid, article_id, url, first_seen) VALUES (?, ?, ?, ?, ?)",
                later["entries"],
            )
            if later["tags"]:
                conn.executemany("INSERT OR IGNORE INTO article_tags (article_id, tag) VALUES (?, ?)", later["tags"])
            if later["bands"]:
                conn.executemany("INSERT OR IGNORE INTO story_bands (band_key, article_id) VALUES (?, ?)", later["bands"])
            warning = update.warning
            if dropped:
                extra = f"{len(dropped)} entries not stored: " + "; ".join(dropped[:3])
                warning = f"{warning}; {extra}" if warning else extra
            self._apply_update(feed, update, now)
            self.db.execute(
                "INSERT INTO fetch_log (feed_id, at, status, http_status, new, updated, linked, bytes, elapsed, "
                "error, warning) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    feed.id,
                    iso(now),
                    update.status,
                    update.http_status,
                    stats.new,
                    stats.updated,
                    stats.linked,
                    update.bytes,
                    round(update.elapsed, 3),
                    update.error,
                    warning,
                ),
            )
        stats.warning = warning
        return stats

    def _apply_entry(
        self,
        feed: Feed,
        intent: EntryIntent,
        now: datetime,
        rules_version: str | None,
        stats: SaveStats,
        pending_stories: dict[int, int],
        later: dict[str, list[tuple[Any, ...]]],
    ) -> None:
        a, t = intent.article, intent.tagging
        if intent.action == "skip":
            stats.unchanged += 1
            return
        if intent.action == "update":
            assert intent.article_id is not None
            self._update_article(intent.article_id, a, t, intent.content_hash, now, rules_version)
            stats.updated += 1
            stats.flagged += int(t.flagged)
            return
        if intent.action == "link":
            later["entries"].append((feed.id, intent.key, intent.article_id, a.url, iso(now)))
            stats.linked += 1
            return
        story_id = self._story_for(intent, pending_stories)
        cur = self.db.execute(
            "INSERT INTO articles (feed_id, guid, url, link, title, author, published, published_from_feed, "
            "first_seen, updated_at, categories, summary_html, summary_text, content_html, content_text, "
            "content_hash, score, flagged, tags, tag_scores, matches, rules_version, story_id, signature, "
            "full_text, full_text_error) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                feed.id,
                intent.key,
                a.url,
                a.link,
                a.title,
                a.author,
                iso(a.published),
                int(a.published_from_feed),
                iso(now),
                iso(now),
                json.dumps(a.categories),
                a.summary_html,
                a.summary_text,
                a.content_html,
                a.content_text,
                intent.content_hash,
                *_tagging_values(t),
                rules_version,
                story_id,
                intent.story.signature if story_id is not None and intent.story else None,
                a.full_text,
                a.full_text_error,
            ),
        )
        article_id = int(cur.lastrowid or 0)
        later["entries"].append((feed.id, intent.key, article_id, a.url, iso(now)))
        if t.flagged and t.tags:
            later["tags"] += [(article_id, x) for x in t.tags]
        if story_id is not None and intent.story is not None:
            later["bands"] += [(b, article_id) for b in intent.story.band_keys]
        stats.new += 1
        stats.flagged += int(t.flagged)
        stats.new_ids.append(article_id)

    def _story_for(self, intent: EntryIntent, pending: dict[int, int]) -> int | None:
        """The story row a new article joins (a pending one is created on first use), counts updated."""
        if intent.story is None or (intent.story_id is None and intent.new_story is None):
            return None
        when = iso(intent.article.published)
        story_id = intent.story_id
        if story_id is None and intent.new_story is not None:
            story_id = pending.get(intent.new_story)
        if story_id is None:
            cur = self.db.execute(
                "INSERT INTO stories (first_seen, last_seen, members) VALUES (?, ?, 1)", (when, when)
            )
            story_id = int(cur.lastrowid or 0)
            if intent.new_story is not None:
                pending[intent.new_story] = story_id
            return story_id
        self.db.execute(
            f"UPDATE stories SET members = members + 1, first_seen = {self._least}(first_seen, ?), "
            f"last_seen = {self._greatest}(last_seen, ?) WHERE id = ?",
            (when, when, story_id),
        )
        return story_id

    def story_candidates(
        self,
        band_keys: Sequence[int],
        *,
        around: datetime,
        window: timedelta,
        exclude: int | None = None,
        limit: int = 100,
        per_band: int = 25,
    ) -> list[StoryCandidate]:
        """Articles sharing band keys with a new one, published within `window` of `around`.

        Bounded work whatever the table holds: for each band key only the
        `per_band` most recent articles carrying it are read (one index range
        each), then at most `limit` candidates, those sharing the most bands
        first. A band made of words half the news uses ("company", "year")
        would otherwise bring back a fixed share of every article in the
        window, and placement would slow down as the window fills; a true
        copy or rewrite shares several bands, so it is still found through
        its rarer ones.
        """
        if not band_keys:
            return []
        per_key, params = self._band_hits(band_keys, per_band)
        cur = self.db.execute(
            "SELECT a.id, a.story_id, a.signature, a.title, a.published, a.score, a.feed_id "
            f"FROM (SELECT article_id, count(*) AS shared FROM ({per_key}) bands GROUP BY article_id) hits "
            "JOIN articles a ON a.id = hits.article_id "
            "WHERE a.published >= ? AND a.published <= ? AND a.id != ? AND a.story_id IS NOT NULL "
            "AND a.signature IS NOT NULL "
            "ORDER BY hits.shared DESC, a.id DESC LIMIT ?",
            (*params, iso(around - window), iso(around + window), exclude or 0, limit),
        )
        return [
            StoryCandidate(i, story, sig, title, datetime.fromisoformat(pub), score, feed_id)
            for i, story, sig, title, pub, score, feed_id in cur.fetchall()
        ]

    def _band_hits(self, band_keys: Sequence[int], per_band: int) -> tuple[str, list[Any]]:
        """SQL of the article ids carrying each band key (at most `per_band` most recent each), and its params."""
        per_key = " UNION ALL ".join(
            "SELECT * FROM (SELECT article_id FROM story_bands WHERE band_key = ? ORDER BY article_id DESC LIMIT ?) b"
            for _ in band_keys
        )
        params: list[Any] = []
        for key in band_keys:
            params += [key, per_band]
        return per_key, params

    def story_spans(self, story_ids: Iterable[int]) -> dict[int, tuple[datetime, datetime]]:
        """(first, last) published time of each of these stories."""
        ids = sorted(set(story_ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(f"SELECT id, first_seen, last_seen FROM stories WHERE id IN ({marks})", ids)
        return {i: (datetime.fromisoformat(f), datetime.fromisoformat(last)) for i, f, last in rows.fetchall()}

    def merge_stories(self, survivor: int, absorbed: Iterable[int]) -> None:
        """Move the absorbed stories' articles into `survivor`, sum the counts, delete the absorbed rows."""
        ids = sorted(set(absorbed) - {survivor})
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        self.db.execute(
            f"UPDATE stories SET first_seen = {self._least}(first_seen, (SELECT min(first_seen) FROM stories WHERE "
            f"id IN ({marks}))), last_seen = {self._greatest}(last_seen, (SELECT max(last_seen) FROM stories WHERE "
            f"id IN ({marks}))), "
            f"members = members + (SELECT sum(members) FROM stories WHERE id IN ({marks})) WHERE id = ?",
            (*ids, *ids, *ids, survivor),
        )
        self.db.execute(f"UPDATE articles SET story_id = ? WHERE story_id IN ({marks})", (survivor, *ids))
        self.db.execute(f"DELETE FROM stories WHERE id IN ({marks})", ids)

    def _update_article(
        self, article_id: int, a: Article, t: Tagging, digest: str, now: datetime, rules_version: str | None
    ) -> None:
        self.db.execute(
            "UPDATE articles SET url = ?, link = ?, title = ?, author = ?, categories = ?, summary_html = ?, "
            "summary_text = ?, content_html = ?, content_text = ?, content_hash = ?, updated_at = ?, "
            f"published = CASE WHEN ? = 1 THEN ? ELSE published END, "
            f"published_from_feed = {self._greatest}(published_from_feed, ?) "
            "WHERE id = ?",
            (
                a.url,
                a.link,
                a.title,
                a.author,
                json.dumps(a.categories),
                a.summary_html,
                a.summary_text,
                a.content_html,
                a.content_text,
                digest,
                iso(now),
                int(a.published_from_feed),
                iso(a.published),
                int(a.published_from_feed),
                article_id,
            ),
        )
        self._set_tagging(article_id, t, now, rules_version, record_changes=False)

    def _write_tags(self, article_id: int, tags: Iterable[str]) -> None:
        self.db.execute("DELETE FROM article_tags WHERE article_id = ?", (article_id,))
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO article_tags (article_id, tag) VALUES (?, ?)", [(article_id, x) for x in tags]
        )

    def _set_tagging(
        self, article_id: int, t: Tagging, now: datetime, rules_version: str | None, *, record_changes: bool
    ) -> tuple[set[str], set[str]]:
        old = self.db.execute("SELECT tags, flagged FROM articles WHERE id = ?", (article_id,)).fetchone()
        old_tags = set(json.loads(old[0])) if old and old[1] else set()
        new_tags = set(t.tags) if t.flagged else set()
        self.db.execute(
            "UPDATE articles SET score = ?, flagged = ?, tags = ?, tag_scores = ?, matches = ?, rules_version = ? "
            "WHERE id = ?",
            (*_tagging_values(t), rules_version, article_id),
        )
        self._write_tags(article_id, sorted(new_tags))
        added, removed = new_tags - old_tags, old_tags - new_tags
        if record_changes:
            self.db.conn.executemany(
                "INSERT INTO tag_changes (article_id, tag, change, at, rules_version) VALUES (?, ?, ?, ?, ?)",
                [(article_id, x, "added", iso(now), rules_version) for x in sorted(added)]
                + [(article_id, x, "removed", iso(now), rules_version) for x in sorted(removed)],
            )
        return added, removed

    def _apply_update(self, feed: Feed, u: FeedUpdate, now: datetime) -> None:
        failing = u.status in ("error", "paused")
        new_url = u.new_url if u.new_url and u.new_url != feed.url else None
        if new_url and self.db.execute("SELECT 1 FROM feeds WHERE url = ?", (new_url,)).fetchone():
            new_url = None  # another feed row already polls that URL; keep ours as it is
        self.db.execute(
            "UPDATE feeds SET url = coalesce(?, url), etag = ?, last_modified = ?, last_status = ?, "
            "http_status = ?, last_error = ?, error_count = ?, "
            "failing_since = CASE WHEN ? = 1 THEN coalesce(failing_since, ?) ELSE NULL END, "
            "last_fetched = ?, last_ok = CASE WHEN ? = 1 THEN ? ELSE last_ok END, next_due = ?, disabled = ?, "
            "title = coalesce(?, title), site_url = coalesce(?, site_url) WHERE id = ?",
            (
                new_url,
                u.etag,
                u.last_modified,
                u.status,
                u.http_status,
                u.error,
                u.error_count,
                int(failing),
                iso(now),
                iso(now),
                int(u.status in ("ok", "not_modified")),
                iso(now),
                iso(u.next_due) if u.next_due else None,
                u.disabled,
                u.title,
                u.site_url,
                feed.id,
            ),
        )

    # ------------------------------------------------------------ reading

    def feed_counts(self) -> dict[int, int]:
        """Distinct entries each feed delivered, counting those another feed carried first."""
        rows = self.db.execute("SELECT feed_id, count(*) FROM entries GROUP BY feed_id").fetchall()
        return {feed_id: n for feed_id, n in rows}

    def last_warnings(self) -> dict[int, str]:
        """Each feed's warning from its latest fetch, when that fetch was stored with one (malformed but usable)."""
        rows = self.db.execute(
            "SELECT l.feed_id, l.warning FROM fetch_log l "
            "JOIN (SELECT feed_id, max(id) AS id FROM fetch_log GROUP BY feed_id) last ON last.id = l.id "
            "WHERE l.warning IS NOT NULL"
        ).fetchall()
        return {feed_id: warning for feed_id, warning in rows}

    def article(self, ref: str | int) -> dict[str, Any]:
        """An article by id or by URL (canonical or as linked)."""
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            row = self._articles_where("a.id = ?", (int(ref),))
        else:
            row = self._articles_where("a.url = ? OR a.link = ?", (ref, ref))
            if not row:
                row = self._articles_where("a.id IN (SELECT article_id FROM entries WHERE url = ?)", (ref,))
        if not row:
            raise NotFound(f"no stored article with id or URL {ref}")
        return row[0]

    def _articles_where(
        self, where: str, params: Sequence[Any], order: str = "a.id", limit: int | None = None
    ) -> list[dict[str, Any]]:
        cur = self.db.execute(
            f"SELECT a.*, {FEED_NAME_SQL} AS feed_name FROM articles a "
            f"JOIN feeds f ON f.id = a.feed_id WHERE {where} ORDER BY {order}"
            + (f" LIMIT {int(limit)}" if limit else ""),
            params,
        )
        cols = [d[0] for d in cur.description]
        return [_decode_article(dict(zip(cols, row))) for row in cur.fetchall()]

    def iter_articles(
        self, since: datetime | None = None, batch: int = 500, *, published_since: datetime | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every stored article (first seen at or after `since`, published at or after
        `published_since`), oldest first, in batches."""
        last = 0
        while True:
            where = "a.id > ?"
            params: list[Any] = [last]
            if since is not None:
                where += " AND a.first_seen >= ?"
                params.append(iso(since))
            if published_since is not None:
                where += " AND a.published >= ?"
                params.append(iso(published_since))
            rows = self._articles_where(where, params, limit=batch)
            if not rows:
                return
            yield from rows
            last = rows[-1]["id"]

    def flagged_between(self, start: datetime, end: datetime) -> list[FlaggedArticle]:
        """Flagged articles published in [start, end), in published order (monitor.digest.select ranks them)."""
        rows = self._articles_where(
            "a.flagged = 1 AND a.published >= ? AND a.published < ?",
            (iso(start), iso(end)),
            order="a.published, a.id",
        )
        return [
            FlaggedArticle(
                id=r["id"], url=r["url"], link=r["link"] or "", title=r["title"], feed=r["feed_name"],
                published=datetime.fromisoformat(r["published"]), score=r["score"], tags=list(r["tags"]),
                tag_scores=dict(r["tag_scores"]), matches=list(r["matches"]),
                text=combined_text(r["summary_text"], r["content_text"], r["full_text"]), story_id=r["story_id"],
            )
            for r in rows
        ]

    def story_members(self, story_ids: Iterable[int]) -> list[StoryMember]:
        """Every outlet's copy of these stories: stored articles, plus the entries other feeds linked to them.

        One record per (article, feed), in published order.
        """
        ids = sorted(set(story_ids))
        if not ids:
            return []
        marks = ",".join("?" for _ in ids)
        cur = self.db.execute(
            "SELECT a.id, a.story_id, a.title, coalesce(nullif(e.url, ''), a.link) AS url, "
            f"{FEED_NAME_SQL} AS feed, a.published, a.score, a.flagged, s.first_seen AS story_first_seen "
            "FROM articles a JOIN entries e ON e.article_id = a.id JOIN feeds f ON f.id = e.feed_id "
            f"JOIN stories s ON s.id = a.story_id WHERE a.story_id IN ({marks}) ORDER BY a.published, a.id, e.feed_id",
            ids,
        )
        return [
            StoryMember(aid, sid, title, url or "", feed, datetime.fromisoformat(pub), score, bool(flagged),
                        datetime.fromisoformat(first))
            for aid, sid, title, url, feed, pub, score, flagged, first in cur.fetchall()
        ]

    def stories_between(self, start: datetime, end: datetime) -> list[StoryMember]:
        """Stories with an article published in [start, end): their members (as story_members gives them)."""
        rows = self.db.execute(
            "SELECT DISTINCT story_id FROM articles WHERE published >= ? AND published < ? AND story_id IS NOT NULL",
            (iso(start), iso(end)),
        ).fetchall()
        return self.story_members(r[0] for r in rows)

    def flagged_tags_between(self, start: datetime, end: datetime) -> list[tuple[str, int | None, list[str]]]:
        """(published, story_id, tags) of every flagged article published in [start, end): for trends."""
        rows = self.db.execute(
            "SELECT published, story_id, tags FROM articles WHERE flagged = 1 AND published >= ? AND published < ?",
            (iso(start), iso(end)),
        ).fetchall()
        return [(p, sid, json.loads(t)) for p, sid, t in rows]

    def recent_texts(self, limit: int) -> list[str]:
        """Title and text of the most recently stored articles (a background for term suggestion)."""
        rows = self.db.execute(
            "SELECT title || ' ' || summary_text || ' ' || content_text FROM articles ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [r[0] for r in rows]

    def high_scoring_since(self, since: datetime, min_score: float) -> list[dict[str, Any]]:
        """Flagged articles first seen since `since` scoring at least `min_score` (alert candidates)."""
        cur = self.db.execute(
            f"SELECT a.id, a.story_id, a.title, a.link, a.score, a.tags, {FEED_NAME_SQL} AS feed "
            "FROM articles a JOIN feeds f ON f.id = a.feed_id "
            "WHERE a.flagged = 1 AND a.first_seen >= ? AND a.score >= ? ORDER BY a.score DESC, a.id",
            (iso(since), min_score),
        )
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) | {"tags": json.loads(r[5])} for r in cur.fetchall()]

    def record_alert(self, key: str, kind: str, *, at: datetime, detail: dict[str, Any]) -> bool:
        """Remember an alert; False when one with this key was already recorded (at most once each)."""
        with self._writing():
            cur = self.db.execute(
                "INSERT OR IGNORE INTO alerts (kind, key, at, detail) VALUES (?, ?, ?, ?)",
                (kind, key, iso(at), json.dumps(detail)),
            )
        return cur.rowcount == 1

    def alerted_keys(self, keys: Iterable[str]) -> set[str]:
        keys = list(keys)
        if not keys:
            return set()
        marks = ",".join("?" for _ in keys)
        return {r[0] for r in self.db.execute(f"SELECT key FROM alerts WHERE key IN ({marks})", keys).fetchall()}

    def record_alert_delivery(self, key: str, *, at: datetime, error: str | None) -> None:
        with self._writing():
            if error is None:
                self.db.execute("UPDATE alerts SET delivered_at = ?, delivery_error = NULL WHERE key = ?", (iso(at), key))
            else:
                self.db.execute("UPDATE alerts SET delivery_error = ? WHERE key = ?", (error, key))

    def retag(self, article_id: int, tagging: Tagging, *, now: datetime, rules_version: str | None) -> tuple[set[str], set[str]]:
        """Store a new tagging for an article, recording which tags it gained and lost."""
        with self._writing():
            return self._set_tagging(article_id, tagging, now, rules_version, record_changes=True)

    def tag_changes(self, article_id: int) -> list[dict[str, Any]]:
        cur = self.db.execute(
            "SELECT tag, change, at, rules_version FROM tag_changes WHERE article_id = ? ORDER BY id", (article_id,)
        )
        return [dict(zip(("tag", "change", "at", "rules_version"), r)) for r in cur.fetchall()]

    def search(
        self, query: str, *, limit: int | None = 20, offset: int = 0, marks: tuple[str, str] = ("[", "]")
    ) -> list[dict[str, Any]]:
        """Full-text search over titles and text, best match first.

        `limit=None` returns every match. The snippet wraps matched words in
        `marks` (`("", "")` for plain text).
        """
        sql = (
            f"SELECT a.id, a.title, a.url, a.published, a.flagged, a.tags, {FEED_NAME_SQL}, "
            "snippet(articles_fts, -1, ?, ?, '…', 12) "
            "FROM articles_fts JOIN articles a ON a.rowid = articles_fts.rowid JOIN feeds f ON f.id = a.feed_id "
            "WHERE articles_fts MATCH ? ORDER BY bm25(articles_fts, 5.0, 1.0, 1.0) LIMIT ? OFFSET ?"
        )
        page = (-1 if limit is None else limit, max(0, offset))
        rows = self._fts(sql, query, lambda q: (marks[0], marks[1], q, *page))
        return _search_rows(rows)

    def search_total(self, query: str) -> int:
        """How many stored articles `search(query)` finds in all."""
        rows = self._fts("SELECT count(*) FROM articles_fts WHERE articles_fts MATCH ?", query, lambda q: (q,))
        return int(rows[0][0]) if rows else 0

    def _fts(self, sql: str, query: str, params: Any) -> list[Any]:
        try:
            return self.db.execute(sql, params(query)).fetchall()
        except sqlite3.OperationalError:
            # Not valid FTS5 syntax (a stray quote, a bare operator): search the words literally.
            literal = " ".join('"' + w.replace('"', '""') + '"' for w in query.split())
            if not literal:
                return []
            return self.db.execute(sql, params(literal)).fetchall()

    def counts(self) -> dict[str, int]:
        row = self.db.execute("SELECT count(*), coalesce(sum(flagged), 0) FROM articles").fetchone()
        return {"articles": row[0], "flagged": row[1]}

    # ---------------------------------------------------------- digests

    def record_digest(self, day: str, *, generated_at: datetime, items: int, paths: Sequence[str]) -> None:
        """Remember that a day's digest was built (delivery state is kept across rebuilds)."""
        with self._writing():
            self.db.execute(
                "INSERT INTO digests (day, generated_at, items, paths) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(day) DO UPDATE SET generated_at = excluded.generated_at, items = excluded.items, "
                "paths = excluded.paths",
                (day, iso(generated_at), items, json.dumps(list(paths))),
            )

    def record_delivery(self, day: str, *, at: datetime, error: str | None) -> None:
        with self._writing():
            if error is None:
                self.db.execute(
                    "UPDATE digests SET delivered_at = ?, delivery_error = NULL WHERE day = ?", (iso(at), day)
                )
            else:
                self.db.execute("UPDATE digests SET delivery_error = ? WHERE day = ?", (error, day))

    def digest(self, day: str) -> dict[str, Any] | None:
        rows = self._digest_rows("day = ?", (day,))
        return rows[0] if rows else None

    def last_digest(self) -> dict[str, Any] | None:
        rows = self._digest_rows("1 = 1", (), "day DESC LIMIT 1")
        return rows[0] if rows else None

    def undelivered_digests(self) -> list[dict[str, Any]]:
        """Digests whose delivery failed (or never ran), oldest first, for a retry."""
        return self._digest_rows("delivered_at IS NULL", (), "day")

    def _digest_rows(self, where: str, params: Sequence[Any], order: str = "day") -> list[dict[str, Any]]:
        cur = self.db.execute(
            f"SELECT day, generated_at, items, paths, delivered_at, delivery_error FROM digests WHERE {where} "
            f"ORDER BY {order}",
            params,
        )
        cols = [d[0] for d in cur.description]
        out = []
        for row in cur.fetchall():
            d = dict(zip(cols, row))
            d["paths"] = json.loads(d["paths"])
            out.append(d)
        return out

    def first_activity(self) -> datetime | None:
        """When monitoring began: the earliest feed added. Catch-up never goes further back."""
        row = self.db.execute("SELECT min(added_at) FROM feeds").fetchone()
        return parse_iso(row[0]) if row else None

    def failing_feeds(self) -> list[Feed]:
        return self._feed_rows("removed = 0 AND (failing_since IS NOT NULL OR disabled IS NOT NULL)")

    # ----------------------------------------------------------- labels

    def set_label(self, article_id: int, *, user: str, relevant: bool, tags: Sequence[str] | None, now: datetime) -> None:
        """Record `user`'s verdict on an article (replacing their earlier one; the history keeps both)."""
        tags_json = json.dumps(sorted(set(tags))) if tags is not None else None
        with self._writing():
            if not self.db.execute("SELECT 1 FROM articles WHERE id = ?", (article_id,)).fetchone():
                raise NotFound(f"no stored article with id {article_id}")
            self.db.execute(
                'INSERT INTO labels (article_id, "user", relevant, tags, at) VALUES (?, ?, ?, ?, ?) '
                'ON CONFLICT (article_id, "user") DO UPDATE SET relevant = excluded.relevant, tags = excluded.tags, '
                "at = excluded.at",
                (article_id, user, int(relevant), tags_json, iso(now)),
            )
            self.db.execute(
                'INSERT INTO label_history (article_id, "user", relevant, tags, at) VALUES (?, ?, ?, ?, ?)',
                (article_id, user, int(relevant), tags_json, iso(now)),
            )

    def labels(self, article_ids: Iterable[int] | None = None) -> list[dict[str, Any]]:
        """Current labels (all, or of these articles), oldest first: article_id, user, relevant, tags, at."""
        where, params = "", []
        if article_ids is not None:
            params = sorted(set(article_ids))
            if not params:
                return []
            where = f"WHERE article_id IN ({_marks(params)})"
        # "user" quoted: a reserved word in PostgreSQL (there, a bare `user` is the session's role name).
        cur = self.db.execute(
            f'SELECT article_id, "user", relevant, tags, at FROM labels {where} ORDER BY at, article_id', params
        )
        return [
            {"article_id": a, "user": u, "relevant": bool(r), "tags": json.loads(t) if t is not None else None, "at": at}
            for a, u, r, t, at in cur.fetchall()
        ]

    def labeled_articles(self) -> list[dict[str, Any]]:
        """Every labeled article (as `article` gives it) with its latest label under "label"."""
        latest: dict[int, dict[str, Any]] = {}
        for label in self.labels():
            latest[label["article_id"]] = label  # ordered by time: the newest verdict wins
        if not latest:
            return []
        out = []
        ids = sorted(latest)
        for chunk in _chunks([str(i) for i in ids]):
            for row in self._articles_where(f"a.id IN ({_marks(chunk)})", [int(i) for i in chunk]):
                row["label"] = latest[row["id"]]
                out.append(row)
        return out

    def pause_feed(self, url: str) -> Feed:
        """Stop polling a feed until it is reset; its articles and state stay."""
        feed = self.get_feed(url)
        with self._writing():
            self.db.execute("UPDATE feeds SET disabled = 'paused', last_status = 'paused' WHERE id = ?", (feed.id,))
        return self.get_feed(url)

    # ------------------------------------------------- browsing (web app)

    def search_page(
        self,
        query: str = "",
        *,
        tag: str | None = None,
        feed_id: int | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        flagged: bool | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of articles matching a full-text query (or all) and the filters, with the total.

        Best match first with a query, newest first without. Rows as `search`
        gives them, the matched words in the snippet between \\x02 and \\x03.
        """
        where, params = _page_filters(tag, feed_id, start, end, flagged)
        cols = _PAGE_COLUMNS
        join = "JOIN feeds f ON f.id = a.feed_id"
        q = query.strip()

        def run(match: str | None) -> tuple[list[tuple[Any, ...]], int]:
            conds = list(where)
            ps = list(params)
            if match is not None:
                conds.insert(0, "articles_fts MATCH ?")
                ps.insert(0, match)
                base = f"FROM articles_fts JOIN articles a ON a.rowid = articles_fts.rowid {join}"
                snippet = "snippet(articles_fts, -1, char(2), char(3), '…', 12)"
                order = "bm25(articles_fts, 5.0, 1.0, 1.0), a.id"
            else:
                base = f"FROM articles a {join}"
                snippet = "substr(a.summary_text || ' ' || a.content_text, 1, 200)"
                order = "a.published DESC, a.id DESC"
            cond = (" WHERE " + " AND ".join(conds)) if conds else ""
            total = self.db.execute(f"SELECT count(*) {base}{cond}", ps).fetchone()[0]
            rows = self.db.execute(
                f"SELECT {cols}, {snippet} {base}{cond} ORDER BY {order} LIMIT ? OFFSET ?", ps + [limit, offset]
            ).fetchall()
            return rows, total

        if not q:
            rows, total = run(None)
        else:
            try:
                rows, total = run(q)
            except sqlite3.OperationalError:
                # Not valid FTS5 syntax (a stray quote, a bare operator): search the words literally.
                rows, total = run(" ".join('"' + w.replace('"', '""') + '"' for w in q.split()))
        return _search_rows(rows), total

    def flagged_with_tag_between(self, tag: str | None, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Flagged articles (with `tag`, or any) published in [start, end): id, story_id, title, link, feed,
        published, score, tags; for the timeline."""
        where = "a.flagged = 1 AND a.published >= ? AND a.published < ?"
        params: list[Any] = [iso(start), iso(end)]
        if tag:
            where += " AND a.id IN (SELECT article_id FROM article_tags WHERE tag = ?)"
            params.append(tag)
        cur = self.db.execute(
            "SELECT a.id, a.story_id, a.title, a.link, coalesce(f.name, f.title, f.url), a.published, a.score, a.tags "
            f"FROM articles a JOIN feeds f ON f.id = a.feed_id WHERE {where} ORDER BY a.published, a.id",
            params,
        )
        keys = ("id", "story_id", "title", "link", "feed", "published", "score", "tags")
        return [dict(zip(keys, r)) | {"tags": json.loads(r[7])} for r in cur.fetchall()]

    def all_tags(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT tag FROM article_tags ORDER BY tag").fetchall()]

    # ------------------------------------------------------ housekeeping

    def prune(self, *, before: datetime) -> int:
        """Delete unflagged articles first seen and published before `before`. Flagged ones are kept."""
        cutoff = iso(before)
        with self._writing():
            cur = self.db.execute(
                "DELETE FROM articles WHERE flagged = 0 AND first_seen < ? AND published < ? "
                "AND id NOT IN (SELECT article_id FROM labels)",  # a labeled miss is worth keeping
                (cutoff, cutoff),
            )
            self.db.execute("DELETE FROM fetch_log WHERE at < ?", (cutoff,))
        return cur.rowcount

    def compact_fetch_log(self, *, fold_before: datetime, drop_before: datetime) -> tuple[int, int]:
        """Bound the fetch log: drop rows older than `drop_before`; fold each feed's earlier days into one row.

        Before `fold_before`, the fetches of one feed on one UTC day become
        their last row (its status, error and warning: the day's outcome)
        with the day's counts summed and `fetches` saying how many there
        were. The last row keeps its id, so "a feed's latest fetch" reads
        the same. Returns (rows folded away, rows dropped).
        """
        with self._writing():
            dropped = self.db.execute("DELETE FROM fetch_log WHERE at < ?", (iso(drop_before),)).rowcount
            # Unqualified names and CAST ... NUMERIC: the same statements run on PostgreSQL.
            self.db.execute("DROP TABLE IF EXISTS fold")
            self.db.execute(
                "CREATE TEMP TABLE fold AS SELECT feed_id, substr(at, 1, 10) AS day, max(id) AS keep, "
                "sum(fetches) AS fetches, sum(new) AS new, sum(updated) AS updated, sum(linked) AS linked, "
                "sum(bytes) AS bytes, sum(elapsed) AS elapsed FROM fetch_log WHERE at < ? "
                "GROUP BY feed_id, substr(at, 1, 10) HAVING count(*) > 1",
                (iso(fold_before),),
            )
            self.db.execute("CREATE INDEX fold_keep ON fold(keep)")
            self.db.execute(
                "UPDATE fetch_log SET (fetches, new, updated, linked, bytes, elapsed) = "
                "(SELECT fetches, new, updated, linked, bytes, round(CAST(elapsed AS NUMERIC), 3) FROM fold "
                "WHERE keep = fetch_log.id) "
                "WHERE id IN (SELECT keep FROM fold)"
            )
            folded = self.db.execute(
                "DELETE FROM fetch_log WHERE id IN (SELECT l.id FROM fold f JOIN fetch_log l "
                "ON l.feed_id = f.feed_id AND l.at >= f.day AND l.at < f.day || 'T99' WHERE l.id != f.keep)"
            ).rowcount
            self.db.execute("DROP TABLE fold")
        return folded, dropped

    def meta(self, key: str) -> str | None:
        """A value of the store's own bookkeeping (see `set_meta`)."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str | None) -> None:
        with self._writing():
            self._set_meta(key, value)

    def maintain(self) -> None:
        """Keep the file in shape: merge FTS segments, refresh planner stats, trim the WAL."""
        try:
            self.db.execute("INSERT INTO articles_fts(articles_fts) VALUES ('optimize')")
            self.db.execute("PRAGMA optimize")
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise _storage_error(exc, self.path) from None

    # ------------------------------------------------------------ helpers

    def _writing(self) -> Any:
        return _Writing(self)

    def _error(self, exc: BaseException) -> StorageError:
        """A database failure as the one-line StorageError the CLI prints."""
        assert isinstance(exc, sqlite3.Error)
        return _storage_error(exc, self.path)
    def _index_new_articles(self) -> None:
        """Add the transaction's new articles to the search index in one statement, just before it commits.

        One INSERT ... SELECT per transaction instead of a trigger per row
        (m006): FTS5 flushes its pending terms at every savepoint, and each
        feed of a batch is one, so the trigger wrote a small index segment
        per feed. Until the commit the `fts_pending_from` mark tells the
        update and delete triggers to leave those rows alone (they are not
        in the index yet); it is removed in the same transaction.
        """
        if not self._fts_pending:
            return
        self._fts_pending = False
        self.db.execute(
            "INSERT INTO articles_fts (rowid, title, summary_text, content_text, full_text) "
            "SELECT id, title, summary_text, content_text, full_text FROM articles "
            "WHERE id >= (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fts_pending_from')"
        )
        self.db.execute("DELETE FROM meta WHERE key = 'fts_pending_from'")


class _Writing:
    """A write transaction that turns SQLite failures into one clear StorageError.

    The outermost one starts with BEGIN IMMEDIATE: it takes the write lock
    before its first read, so it waits out the busy timeout for another
    process's writer. A deferred transaction that reads and then writes
    cannot wait: under WAL its upgrade fails at once with "database is
    locked" when another process wrote meanwhile. Nested ones are
    savepoints.
    """

    def __init__(self, store: Store):
        self.store = store
        self.inner: Any = None

    def __enter__(self) -> Database:
        conn = self.store.db.conn
        try:
            if conn.in_transaction:
                self.inner = self.store.db.atomic()
                return self.inner.__enter__()  # type: ignore[no-any-return]
            conn.execute("BEGIN IMMEDIATE")
            return self.store.db
        except self.store._db_errors as exc:
            raise self.store._error(exc) from exc

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        conn = self.store.db.conn
        try:
            if self.inner is not None:
                self.inner.__exit__(exc_type, exc, tb)  # re-raises exc: converted below
            elif exc_type is None:
                self.store._index_new_articles()
                conn.commit()
            else:
                self.store._fts_pending = False
                conn.rollback()
        except self.store._db_errors as err:
            if self.inner is None and conn.in_transaction:
                self.store._fts_pending = False
                conn.rollback()
            raise self.store._error(err) from err
        if isinstance(exc, self.store._db_errors):
            raise self.store._error(exc) from exc


def _decode_article(d: dict[str, Any]) -> dict[str, Any]:
    for key in ("categories", "tags"):
        d[key] = json.loads(d[key])
    d["tag_scores"] = json.loads(d["tag_scores"])
    d["matches"] = matches_from_json(d["matches"])
    d["flagged"] = bool(d["flagged"])
    d["published_from_feed"] = bool(d["published_from_feed"])
    return d


_PAGE_COLUMNS = "a.id, a.title, a.url, a.published, a.flagged, a.tags, coalesce(f.name, f.title, f.url)"


def _page_filters(
    tag: str | None, feed_id: int | None, start: datetime | None, end: datetime | None, flagged: bool | None
) -> tuple[list[str], list[Any]]:
    """The search page's filters as WHERE conditions over `articles a`, and their parameters."""
    where: list[str] = []
    params: list[Any] = []
    if tag:
        where.append("a.id IN (SELECT article_id FROM article_tags WHERE tag = ?)")
        params.append(tag)
    if feed_id is not None:
        where.append("(a.feed_id = ? OR a.id IN (SELECT article_id FROM entries WHERE feed_id = ?))")
        params += [feed_id, feed_id]
    if start is not None:
        where.append("a.published >= ?")
        params.append(iso(start))
    if end is not None:
        where.append("a.published < ?")
        params.append(iso(end))
    if flagged is not None:
        where.append("a.flagged = ?")
        params.append(int(flagged))
    return where, params


_SEARCH_KEYS = ("id", "title", "url", "published", "flagged", "tags", "feed", "snippet")


def _search_rows(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Search hits as dicts (`monitor search --json`, the web app's search page)."""
    out = []
    for r in rows:
        d = dict(zip(_SEARCH_KEYS, r))
        d["tags"] = json.loads(d["tags"])
        d["flagged"] = bool(d["flagged"])
        out.append(d)
    return out
