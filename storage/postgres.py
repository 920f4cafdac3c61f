"""The PostgreSQL store: `PgStore`, the same contract as `storage.store.Store`, on psycopg 3.

It shares the SQLite store's SQL: `_PgDatabase` is a thin connection shim
that offers what `Store` calls on its sqlite-utils `Database` (`execute`,
`executemany`, `in_transaction`, `atomic`, `commit`, `rollback`, `close`)
and translates the few SQLite spellings the shared SQL still uses (`?`
placeholders, `INSERT OR IGNORE`, `BEGIN IMMEDIATE`, `lastrowid`). Only the
methods whose SQL really differs are overridden here: full-text search
(PostgreSQL full text over a GIN index instead of FTS5), the two lookups
that rely on SQLite's bare columns beside `min()`, `set_feed_options`
(`IS NOT` between values) and `maintain`.

Connection loss (PostgreSQL restarted, network cut): the failing operation
raises one StorageError line; the next operation outside a transaction
reconnects. What was committed stays; an open transaction is lost whole,
as with SQLite's rollback.

It must not fetch, parse or evaluate rules: it stores what it is given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import pq

from core.errors import StorageError
from storage.pg_schema import FTS_CONFIG, fts_document, migrate
from storage.store import (
    _PAGE_COLUMNS,
    FEED_NAME_SQL,
    KnownArticle,
    Store,
    _chunks,
    _marks,
    _page_filters,
    _search_rows,
    iso,
)

_ID_INSERT = re.compile(r"^\s*INSERT INTO (articles|stories) ", re.IGNORECASE)
_FTS_DOC = fts_document("a")
_VALUES = re.compile(
    r"^(\s*INSERT INTO [^()]+\([^()]*\) VALUES )(\((?:(?:%s|'[^']*'), )*(?:%s|'[^']*')\))(.*)$", re.DOTALL
)


def display_url(url: str) -> str:
    """The URL fit for messages: user, host, port and database; no password, no query (it may hold one)."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        user = parts.username
        return urlunsplit((parts.scheme, f"{user}@{host}" if user else host, parts.path, "", ""))
    except ValueError:
        return "postgresql://(unparsable URL)"


@lru_cache(maxsize=512)
def _translate(sql: str, with_params: bool) -> tuple[str, bool]:
    """SQLite spelling -> PostgreSQL: (sql, returns_id)."""
    s = sql
    if s.strip().upper() == "BEGIN IMMEDIATE":
        return "BEGIN", False
    if s.lstrip().upper().startswith("INSERT OR IGNORE INTO"):
        s = re.sub(r"(?i)INSERT OR IGNORE INTO", "INSERT INTO", s, count=1) + " ON CONFLICT DO NOTHING"
    returns_id = bool(_ID_INSERT.match(s))
    if returns_id:
        s += " RETURNING id"
    if with_params:
        s = s.replace("%", "%%").replace("?", "%s")
    return s, returns_id


def _bindable(params: Sequence[Any]) -> list[Any]:
    """PostgreSQL text cannot hold NUL (SQLite's can): a NUL becomes U+FFFD, as clean.storable does for surrogates."""
    return [p.replace("\x00", "\ufffd") if isinstance(p, str) and "\x00" in p else p for p in params]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class _Result:
    """A psycopg cursor seen as a sqlite3 cursor: fetchone/fetchall/rowcount/description, plus lastrowid."""

    def __init__(self, cur: psycopg.Cursor[Any], lastrowid: int | None = None):
        self._cur = cur
        self.lastrowid = lastrowid
        self.rowcount = cur.rowcount
        self.description = cur.description

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall() if self._cur.description is not None else []

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class _PgDatabase:
    """What `Store` uses of sqlite-utils' Database and sqlite3's connection, over one psycopg connection.

    Autocommit mode: a read outside `transaction()` is its own statement
    (no transaction left idle); writes go through explicit BEGIN/COMMIT
    and savepoints, as in the SQLite store.
    """

    def __init__(self, url: str, label: str):
        self.url, self.label = url, label
        self.conn = self  # Store calls db.conn.executemany / in_transaction / commit / close
        self._pg: psycopg.Connection[Any] | None = None
        self._savepoints = 0
        # Inside our explicit BEGIN ... COMMIT: a lost connection must not be replaced silently there
        # (the statements after it would commit one by one); the caller's rollback ends the state.
        self._in_tx = False
        self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            self._pg = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise StorageError(f"{self.label}: cannot connect to PostgreSQL: {_first_line(exc)}") from None
        return self._pg

    def _live(self, sql: str = "") -> psycopg.Connection[Any]:
        pg = self._pg
        if pg is None or pg.closed or pg.broken:
            if self._in_tx and sql != "BEGIN":
                self._in_tx = sql not in ("COMMIT", "ROLLBACK")  # a failed COMMIT ends the transaction
                raise StorageError(
                    f"{self.label}: lost the connection to PostgreSQL mid-transaction; the transaction was rolled back"
                )
            self._in_tx = False
            pg = self._connect()  # outside a transaction nothing is lost: connect again
        return pg

    def _lost(self, exc: psycopg.Error) -> StorageError:
        return StorageError(
            f"{self.label}: lost the connection to PostgreSQL ({_first_line(exc)}); "
            "what was committed is kept, the next operation reconnects"
        )

    def _is_lost(self, exc: psycopg.Error) -> bool:
        pg = self._pg
        return pg is None or pg.closed or pg.broken or isinstance(exc, psycopg.OperationalError) and (
            exc.sqlstate is None or exc.sqlstate.startswith(("08", "57P"))
        )

    # sqlite-utils / sqlite3 surface -------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> _Result:
        text, returns_id = _translate(sql, params is not None)
        pg = self._live(text)
        try:
            cur = pg.execute(text, _bindable(params) if params is not None else None)
        except psycopg.Error as exc:
            if self._is_lost(exc):
                raise self._lost(exc) from None
            raise
        if text in ("BEGIN", "COMMIT", "ROLLBACK"):
            self._in_tx = text == "BEGIN"
        if returns_id:
            row = cur.fetchone()
            return _Result(cur, int(row[0]) if row else None)
        return _Result(cur)

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> None:
        rows = [_bindable(r) for r in seq]
        if not rows:
            return
        text, _ = _translate(sql, True)
        pg = self._live(text)
        try:
            many = _VALUES.match(text)
            if many:
                # An INSERT's rows in one statement per chunk (a new article's 48 story bands: one round
                # trip, not 48); the parameter count stays far below PostgreSQL's 65535.
                head, row, tail = many.groups()
                size = max(1, 10_000 // max(1, len(rows[0])))
                for i in range(0, len(rows), size):
                    chunk = rows[i : i + size]
                    pg.execute(head + ", ".join([row] * len(chunk)) + tail, [v for r in chunk for v in r])
                return
            with pg.cursor() as cur:
                cur.executemany(text, rows)
        except psycopg.Error as exc:
            if self._is_lost(exc):
                raise self._lost(exc) from None
            raise

    @property
    def in_transaction(self) -> bool:
        pg = self._pg
        if pg is None or pg.closed or pg.broken:
            return False
        return pg.info.transaction_status in (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        if self.in_transaction:
            self.execute("ROLLBACK")
        self._in_tx = False  # on a lost connection the server rolled it back already

    @contextmanager
    def atomic(self) -> Iterator[_PgDatabase]:
        """A savepoint inside the open transaction (the writer's one savepoint per feed)."""
        self._savepoints += 1
        name = f"sp_{self._savepoints}"
        try:
            self.execute(f"SAVEPOINT {name}")
            try:
                yield self
            except BaseException:
                if self.in_transaction:
                    self.execute(f"ROLLBACK TO SAVEPOINT {name}")
                    self.execute(f"RELEASE SAVEPOINT {name}")
                raise
            else:
                self.execute(f"RELEASE SAVEPOINT {name}")
        finally:
            self._savepoints -= 1

    def close(self) -> None:
        if self._pg is not None:
            self._pg.close()


# pg_advisory_xact_lock key of `hold_identity_lock` ("identity" in ASCII; any fixed bigint would do).
IDENTITY_LOCK = 0x6964656E74697479


class PgStore(Store):
    """The store on PostgreSQL. One connection; not shared between threads (as Store)."""

    _db_errors = (psycopg.Error,)
    _fts_batched = False
    _least, _greatest = "least", "greatest"

    def __init__(self, url: str):
        self.url = url
        self.target = url
        label = display_url(url)
        self.path = label  # type: ignore[assignment]  # shown in messages, never the password
        shim = _PgDatabase(url, label)
        self.db = shim  # type: ignore[assignment]
        try:
            migrate(shim._live(), iso(datetime.now(timezone.utc)))
        except psycopg.Error as exc:
            self.db.close()
            raise StorageError(f"{self.path}: cannot prepare the database: {_first_line(exc)}") from None

    def _error(self, exc: BaseException) -> StorageError:
        if isinstance(exc, StorageError):
            return exc
        return StorageError(f"{self.path}: {_first_line(exc)}")

    # ---------------------------------------------------- SQL that differs

    def hold_identity_lock(self) -> None:
        # Several workers write at once on PostgreSQL; a transaction-scoped advisory lock admits
        # one decider at a time, as SQLite's BEGIN IMMEDIATE does (released at COMMIT/ROLLBACK).
        # READ COMMITTED: every statement after it sees what the previous holder committed.
        self.db.execute("SELECT pg_advisory_xact_lock(?)", (IDENTITY_LOCK,))

    def set_feed_options(self, options: Iterable[tuple[str, bool, str | None]]) -> None:
        with self._writing():
            self.db.conn.executemany(
                "UPDATE feeds SET full_text = ?, category = ? WHERE (url = ? OR origin_url = ?) "
                "AND (full_text IS DISTINCT FROM ? OR category IS DISTINCT FROM ?)",
                [(int(full), category, url, url, int(full), category) for url, full, category in options],
            )

    def _band_hits(self, band_keys: Sequence[int], per_band: int) -> tuple[str, list[Any]]:
        # One statement text whatever the number of keys (prepared once), each key one index range.
        return (
            "SELECT b.article_id FROM unnest(?::bigint[]) AS k(key) CROSS JOIN LATERAL "
            "(SELECT article_id FROM story_bands WHERE band_key = k.key "
            "ORDER BY article_id DESC LIMIT ?) b",
            [list(band_keys), per_band],
        )

    def articles_by_url(self, urls: Iterable[str]) -> dict[str, KnownArticle]:
        found: dict[str, KnownArticle] = {}
        for chunk in _chunks(list(urls)):
            rows = self.db.execute(
                f"SELECT DISTINCT ON (url) url, id, feed_id FROM articles WHERE url IN ({_marks(chunk)}) "
                "ORDER BY url, id",
                chunk,
            ).fetchall()
            found.update({url: KnownArticle(article_id, feed_id) for url, article_id, feed_id in rows})
        return found

    def articles_by_hash(self, hashes: Iterable[str], *, other_than_feed: int) -> dict[str, KnownArticle]:
        found: dict[str, KnownArticle] = {}
        for chunk in _chunks(list(hashes)):
            rows = self.db.execute(
                f"SELECT DISTINCT ON (content_hash) content_hash, id, feed_id FROM articles "
                f"WHERE content_hash IN ({_marks(chunk)}) AND feed_id != ? ORDER BY content_hash, id",
                (*chunk, other_than_feed),
            ).fetchall()
            found.update({h: KnownArticle(article_id, feed_id) for h, article_id, feed_id in rows})
        return found

    def maintain(self) -> None:
        """Refresh the planner's statistics (autovacuum keeps the GIN index and the tables in shape)."""
        try:
            self.db.execute("ANALYZE")
        except psycopg.Error as exc:
            raise self._error(exc) from None

    # ---------------------------------------------------------- full text

    def search(
        self, query: str, *, limit: int | None = 20, offset: int = 0, marks: tuple[str, str] = ("[", "]")
    ) -> list[dict[str, Any]]:
        q_sql, q_params = tsquery(query)
        if q_sql is None:
            return []
        sql = (
            f"SELECT a.id, a.title, a.url, a.published, a.flagged, a.tags, {FEED_NAME_SQL}, {_snippet()} "
            f"FROM articles a JOIN feeds f ON f.id = a.feed_id, {q_sql} AS q WHERE {_FTS_DOC} @@ q.q "
            f"ORDER BY {_rank()} DESC, a.id LIMIT ? OFFSET ?"
        )
        rows = self.db.execute(
            sql, [_headline_options(marks), *q_params, None if limit is None else limit, max(0, offset)]
        ).fetchall()
        return _search_rows(rows)

    def search_total(self, query: str) -> int:
        q_sql, q_params = tsquery(query)
        if q_sql is None:
            return 0
        row = self.db.execute(f"SELECT count(*) FROM articles a, {q_sql} AS q WHERE {_FTS_DOC} @@ q.q", q_params)
        return int(row.fetchone()[0])

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
        where, params = _page_filters(tag, feed_id, start, end, flagged)
        cols = _PAGE_COLUMNS
        q_sql, q_params = tsquery(query)
        if query.strip() and q_sql is None:
            return [], 0
        if q_sql is not None:
            base = f"FROM articles a JOIN feeds f ON f.id = a.feed_id, {q_sql} AS q"
            where.insert(0, f"{_FTS_DOC} @@ q.q")
            params = q_params + params
            snippet, snippet_params = _snippet(), [_headline_options(("\x02", "\x03"))]
            order = f"{_rank()} DESC, a.id"
        else:
            base = "FROM articles a JOIN feeds f ON f.id = a.feed_id"
            snippet, snippet_params = "substr(a.summary_text || ' ' || a.content_text, 1, 200)", []
            order = "a.published DESC, a.id DESC"
        cond = (" WHERE " + " AND ".join(where)) if where else ""
        total = self.db.execute(f"SELECT count(*) {base}{cond}", params).fetchone()[0]
        rows = self.db.execute(
            f"SELECT {cols}, {snippet} {base}{cond} ORDER BY {order} LIMIT ? OFFSET ?",
            snippet_params + params + [limit, offset],
        ).fetchall()
        return _search_rows(rows), int(total)


def _rank() -> str:
    # Title (weight A) counts five times the text (D), as bm25(articles_fts, 5.0, 1.0, 1.0) does in SQLite.
    return f"ts_rank('{{0.2, 0.2, 0.2, 1.0}}', {_FTS_DOC}, q.q)"


def _snippet() -> str:
    text = "a.title || ' ' || a.summary_text || ' ' || a.content_text || ' ' || a.full_text"
    return f"ts_headline('{FTS_CONFIG}', {text}, q.q, ?)"


def _headline_options(marks: tuple[str, str]) -> str:
    def quoted(s: str) -> str:
        return '"' + s.replace('"', '""') + '"'

    return (
        f"StartSel={quoted(marks[0]) if marks[0] else chr(1)}, StopSel={quoted(marks[1]) if marks[1] else chr(1)}, "
        "MaxWords=12, MinWords=4, MaxFragments=1, FragmentDelimiter=\" … \""
    ).replace(chr(1), '""')


_TOKEN = re.compile(r'"[^"]*"?|\(|\)|[^\s()"]+')


def tsquery(query: str) -> tuple[str | None, list[Any]]:
    """The SQLite search syntax (FTS5) as a PostgreSQL tsquery: (SQL of a one-row `q` subquery, params).

    Words are ANDed; `OR`, `NOT` (and not), `AND`, "quoted phrases",
    `prefix*` and parentheses work as in FTS5. Each word or phrase is a
    bound parameter through `phraseto_tsquery`, so no input is a syntax
    error (as SQLite's store searches a malformed query's words literally).
    None when the query has no words.
    """
    tokens = _TOKEN.findall(query)
    params: list[Any] = []
    pos = 0

    def term(tok: str) -> str:
        if tok.endswith("*") and not tok.startswith('"') and len(tok) > 1:
            word = re.sub(r"[^\w]+", "", tok[:-1])
            if word:
                params.append(word.lower() + ":*")
                return f"to_tsquery('{FTS_CONFIG}', ?)"
        params.append(tok.strip('"'))
        return f"phraseto_tsquery('{FTS_CONFIG}', ?)"

    def unary() -> str | None:
        nonlocal pos
        while pos < len(tokens):
            tok = tokens[pos]
            pos += 1
            if tok == "(":
                inner = expr()
                if pos < len(tokens) and tokens[pos] == ")":
                    pos += 1
                if inner is not None:
                    return f"({inner})"
                continue
            if tok == ")" or tok in ("AND", "OR", "NOT"):
                continue  # a stray operator: skipped, as if the user had not typed it
            return term(tok)
        return None

    def conj() -> str | None:
        nonlocal pos
        out = unary()
        while pos < len(tokens) and tokens[pos] not in ("OR", ")"):
            negate = tokens[pos] == "NOT"
            if tokens[pos] in ("AND", "NOT"):
                pos += 1
            nxt = unary()
            if nxt is None:
                break
            nxt = f"!!({nxt})" if negate else nxt
            out = nxt if out is None else f"({out} && {nxt})"
        return out

    def expr() -> str | None:
        nonlocal pos
        out = conj()
        while pos < len(tokens) and tokens[pos] == "OR":
            pos += 1
            nxt = conj()
            if nxt is not None:
                out = nxt if out is None else f"({out} || {nxt})"
        return out

    parts = []
    while pos < len(tokens):
        got = expr()
        if got is not None:
            parts.append(got)
        elif pos < len(tokens):
            pos += 1  # an unmatched ")"
    if not parts:
        return None, []
    return f"(SELECT {' && '.join(parts)} AS q)", params

