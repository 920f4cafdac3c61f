"""The database schema, as sqlite-utils migrations.

Every schema change is a new migration appended at the end; applied ones are
never edited. Migrations run when a Store opens the database, each in its own
transaction together with the record that it ran.

This module knows tables and indexes only: no queries, no project logic.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("partnership-monitor")


@migrations()
def m001_initial(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE feeds (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL UNIQUE,          -- where it is fetched now (a 301/308 moves it)
            origin_url TEXT NOT NULL,          -- as it was added or configured
            name TEXT,                         -- the user's name for it
            title TEXT,                        -- the feed's own title
            site_url TEXT,
            interval INTEGER,                  -- seconds; NULL: the [schedule] default
            source TEXT NOT NULL DEFAULT 'cli',-- config | cli | opml
            etag TEXT,
            last_modified TEXT,
            last_status TEXT NOT NULL DEFAULT 'new',
            http_status INTEGER,
            last_error TEXT,
            error_count INTEGER NOT NULL DEFAULT 0,
            failing_since TEXT,
            last_fetched TEXT,
            last_ok TEXT,
            next_due TEXT,
            disabled TEXT,                     -- NULL | gone | paused
            removed INTEGER NOT NULL DEFAULT 0,
            added_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE articles (
            id INTEGER PRIMARY KEY,
            feed_id INTEGER NOT NULL REFERENCES feeds(id),  -- the feed that carried it first
            guid TEXT NOT NULL,
            url TEXT NOT NULL,                 -- canonical: dedup key across feeds
            link TEXT NOT NULL,
            title TEXT NOT NULL,
            author TEXT NOT NULL DEFAULT '',
            published TEXT NOT NULL,           -- UTC; the first-seen time when the feed gave none
            published_from_feed INTEGER NOT NULL,
            first_seen TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            categories TEXT NOT NULL DEFAULT '[]',
            summary_html TEXT NOT NULL DEFAULT '',
            summary_text TEXT NOT NULL DEFAULT '',
            content_html TEXT NOT NULL DEFAULT '',
            content_text TEXT NOT NULL DEFAULT '',
            content_hash TEXT NOT NULL,        -- normalised title + text: word-for-word copies share it
            score REAL NOT NULL DEFAULT 0,
            flagged INTEGER NOT NULL DEFAULT 0,
            tags TEXT NOT NULL DEFAULT '[]',
            tag_scores TEXT NOT NULL DEFAULT '{}',
            matches TEXT NOT NULL DEFAULT '[]',
            rules_version TEXT
        )
        """
    )
    db.execute("CREATE INDEX idx_articles_url ON articles(url)")
    db.execute("CREATE INDEX idx_articles_hash ON articles(content_hash)")
    db.execute("CREATE INDEX idx_articles_published ON articles(published)")
    # The digest reads one day's flagged articles: this keeps that query
    # proportional to the day's items, not to the size of the table.
    db.execute("CREATE INDEX idx_articles_flagged_day ON articles(published) WHERE flagged = 1")
    db.execute(
        """
        CREATE TABLE entries (
            feed_id INTEGER NOT NULL REFERENCES feeds(id),
            guid TEXT NOT NULL,
            article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
            url TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            PRIMARY KEY (feed_id, guid)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE INDEX idx_entries_article ON entries(article_id)")
    db.execute(
        """
        CREATE TABLE article_tags (
            article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
            tag TEXT NOT NULL,
            PRIMARY KEY (article_id, tag)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE INDEX idx_article_tags_tag ON article_tags(tag, article_id)")
    db.execute(
        """
        CREATE TABLE tag_changes (
            id INTEGER PRIMARY KEY,
            article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
            tag TEXT NOT NULL,
            change TEXT NOT NULL,              -- added | removed
            at TEXT NOT NULL,
            rules_version TEXT
        )
        """
    )
    db.execute("CREATE INDEX idx_tag_changes_article ON tag_changes(article_id)")
    db.execute(
        """
        CREATE TABLE fetch_log (
            id INTEGER PRIMARY KEY,
            feed_id INTEGER NOT NULL REFERENCES feeds(id),
            at TEXT NOT NULL,
            status TEXT NOT NULL,
            http_status INTEGER,
            new INTEGER NOT NULL DEFAULT 0,
            updated INTEGER NOT NULL DEFAULT 0,
            linked INTEGER NOT NULL DEFAULT 0,
            bytes INTEGER NOT NULL DEFAULT 0,
            elapsed REAL NOT NULL DEFAULT 0,
            error TEXT,
            warning TEXT
        )
        """
    )
    db.execute("CREATE INDEX idx_fetch_log_feed ON fetch_log(feed_id, at)")
    db.table("articles").enable_fts(
        ["title", "summary_text", "content_text"], fts_version="FTS5", create_triggers=True
    )
    db.execute(
        """
        CREATE TABLE digests (
            day TEXT PRIMARY KEY,              -- YYYY-MM-DD in the digest time zone
            generated_at TEXT NOT NULL,
            items INTEGER NOT NULL,
            paths TEXT NOT NULL DEFAULT '[]',
            delivered_at TEXT,
            delivery_error TEXT
        )
        """
    )


@migrations()
def m002_stories(db: Database) -> None:
    """Stories: articles about the same event from different outlets, grouped.

    An article's MinHash signature is kept with it, and its LSH band keys
    in `story_bands`, so placing a new article is an index lookup whatever
    the table size.
    """
    db.execute("ALTER TABLE articles ADD COLUMN story_id INTEGER REFERENCES stories(id)")
    db.execute("ALTER TABLE articles ADD COLUMN signature BLOB")
    db.execute(
        """
        CREATE TABLE stories (
            id INTEGER PRIMARY KEY,
            first_seen TEXT NOT NULL,          -- UTC: when its first article was published
            last_seen TEXT NOT NULL,
            members INTEGER NOT NULL DEFAULT 1
        )
        """
    )
    db.execute("CREATE INDEX idx_articles_story ON articles(story_id)")
    db.execute(
        """
        CREATE TABLE story_bands (
            band_key TEXT NOT NULL,
            article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
            PRIMARY KEY (band_key, article_id)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE INDEX idx_story_bands_article ON story_bands(article_id)")
    db.execute(
        """
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,                -- story | spike
            key TEXT NOT NULL UNIQUE,          -- story:<id> or spike:<tag>:<day>: at most once each
            at TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}',
            delivered_at TEXT,
            delivery_error TEXT
        )
        """
    )


@migrations()
def m003_scale(db: Database) -> None:
    """Indexed lookups for tens of thousands of feeds, and a place for the store's own bookkeeping.

    A configured feed is found by the URL it was added with (`origin_url`)
    as well as by where it is fetched now (`url`, unique, so indexed): the
    second index turns the sync's `url = ? OR origin_url = ?` from a scan
    into two lookups. `meta` keeps small values such as the fingerprint of
    the last synced feed list. `fetches` lets one fetch_log row summarise a
    feed's day (housekeeping folds old rows that way).
    """
    db.execute("CREATE INDEX idx_feeds_origin_url ON feeds(origin_url)")
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
    db.execute("ALTER TABLE fetch_log ADD COLUMN fetches INTEGER NOT NULL DEFAULT 1")
    db.execute("CREATE INDEX idx_fetch_log_at ON fetch_log(at)")


@migrations()
def m004_full_text(db: Database) -> None:
    """The linked page's main text beside the feed's summary, and feed options from config, CLI and OPML.

    `articles.full_text` holds the extracted page text ('' when none);
    `full_text_error` why retrieval failed (NULL when it worked or was not
    tried). The search index is rebuilt to cover the full text. A feed's
    `full_text` asks for its pages, `category` is its OPML folder.
    """
    db.execute("ALTER TABLE articles ADD COLUMN full_text TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE articles ADD COLUMN full_text_error TEXT")
    db.execute("ALTER TABLE feeds ADD COLUMN full_text INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE feeds ADD COLUMN category TEXT")
    db.table("articles").disable_fts()
    db.table("articles").enable_fts(
        ["title", "summary_text", "content_text", "full_text"], fts_version="FTS5", create_triggers=True
    )


@migrations()
def m005_labels(db: Database) -> None:
    """An analyst's verdict on an article: relevant or not, and which tags it should have.

    One current label per article and user (`labels`); every change is also
    appended to `label_history`, so a label changed by mistake can be traced.
    `tags` is a JSON list, or NULL when the analyst said nothing about tags.
    """
    db.execute(
        """
        CREATE TABLE labels (
            article_id INTEGER NOT NULL REFERENCES articles(id),
            user TEXT NOT NULL,
            relevant INTEGER NOT NULL,
            tags TEXT,
            at TEXT NOT NULL,
            PRIMARY KEY (article_id, user)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        """
        CREATE TABLE label_history (
            id INTEGER PRIMARY KEY,
            article_id INTEGER NOT NULL,
            user TEXT NOT NULL,
            relevant INTEGER NOT NULL,
            tags TEXT,
            at TEXT NOT NULL
        )
        """
    )


# The band-key layout m006 moves to (monitor.stories.band_keys / timed_band_keys compute it; the
# conversion below must give the same integers, tests/test_storage.py checks that it does).
_PERIOD_SHIFT = 47
_PERIOD_MASK = 0xFFFF
_HASH_MASK = (1 << _PERIOD_SHIFT) - 1
_BAND_MIX = 0x9E3779B97F4A7C15


def _integer_band_key(text: str) -> int:
    """'{period}/{band}:{12 hex digits}' (m002's text keys) as m006's integer key."""
    period, rest = text.split("/", 1)
    band, digest = rest.split(":", 1)
    h = (int(digest, 16) >> 1) ^ ((int(band) * _BAND_MIX) & _HASH_MASK)
    return ((int(period) & _PERIOD_MASK) << _PERIOD_SHIFT) | h


@migrations()
def m006_band_integers(db: Database) -> None:
    """Story band keys as 63-bit integers (24 rows per article, not 48); the search index fed once per commit.

    m002 stored each article's band keys as ~20-byte text for its 7-day
    period and the next (48 rows); a new article then looked up the same
    48. Now a key is ``period << 47 | band hash`` (an INTEGER: 8 bytes, and
    one period's keys sit together in the index, so an article's rows go
    to a few pages), only the article's own period is stored, and a lookup
    asks for the band in each period its window touches (one or two for 3
    days): the same pairs within the window meet, with half the rows.
    Existing keys are converted; an article's own period is the lower of
    the two it has keys for.
    """
    db.execute(
        """
        CREATE TABLE story_bands_v2 (
            band_key INTEGER NOT NULL,         -- period << 47 | 47-bit band hash (monitor.stories)
            article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
            PRIMARY KEY (band_key, article_id)
        ) WITHOUT ROWID
        """
    )
    db.conn.create_function("m006_band_key", 1, _integer_band_key, deterministic=True)
    db.execute(
        "CREATE TEMP TABLE m006_own AS SELECT article_id, "
        "min(CAST(substr(band_key, 1, instr(band_key, '/') - 1) AS INTEGER)) AS period "
        "FROM story_bands GROUP BY article_id"
    )
    db.execute(
        "INSERT OR IGNORE INTO story_bands_v2 (band_key, article_id) "
        "SELECT m006_band_key(b.band_key), b.article_id FROM story_bands b JOIN m006_own o "
        "ON o.article_id = b.article_id "
        "AND CAST(substr(b.band_key, 1, instr(b.band_key, '/') - 1) AS INTEGER) = o.period "
        "ORDER BY 1"
    )
    db.execute("DROP TABLE m006_own")
    db.execute("DROP TABLE story_bands")
    db.execute("ALTER TABLE story_bands_v2 RENAME TO story_bands")
    db.execute("CREATE INDEX idx_story_bands_article ON story_bands(article_id)")
    # The search index: new articles are added by the store once per transaction, just before it
    # commits (Store._index_new_articles), not by a trigger per row; until then the rows from
    # meta 'fts_pending_from' on are not in the index, so the update and delete triggers leave them
    # alone. An update re-indexes only when a searched column changes (not score, tags or story).
    db.execute("DROP TRIGGER articles_ai")
    db.execute("DROP TRIGGER articles_au")
    db.execute("DROP TRIGGER articles_ad")
    indexed = "WHEN old.id < coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fts_pending_from'), old.id + 1)"
    delete = (
        "INSERT INTO articles_fts (articles_fts, rowid, title, summary_text, content_text, full_text) "
        "VALUES ('delete', old.id, old.title, old.summary_text, old.content_text, old.full_text);"
    )
    db.execute(
        "CREATE TRIGGER articles_au AFTER UPDATE OF title, summary_text, content_text, full_text ON articles "
        f"{indexed} BEGIN {delete} "
        "INSERT INTO articles_fts (rowid, title, summary_text, content_text, full_text) "
        "VALUES (new.id, new.title, new.summary_text, new.content_text, new.full_text); END"
    )
    db.execute(f"CREATE TRIGGER articles_ad AFTER DELETE ON articles {indexed} BEGIN {delete} END")
