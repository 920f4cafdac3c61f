"""The monitor's store: SQLite (storage.store, the default) or PostgreSQL (storage.postgres).

Imports nothing from the pipeline or rules. `open_store(target)` is the one
way the rest of the project opens a store.
"""

from __future__ import annotations

from pathlib import Path

from core.types import StoryKey, content_hash
from storage.store import Feed, FeedUpdate, SaveStats, Store, iso, parse_iso

__all__ = [
    "Feed", "FeedUpdate", "SaveStats", "Store", "StoryKey", "content_hash", "is_pg_url", "iso", "open_store",
    "parse_iso",
]


def is_pg_url(target: Path | str) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def open_store(target: Path | str) -> Store:
    """Open the store at `target`: a postgresql:// URL (PgStore), else a SQLite file path (Store).

    psycopg is imported only for a URL, so the SQLite default needs no server library.
    """
    if is_pg_url(target):
        from storage.postgres import PgStore

        return PgStore(str(target))
    return Store(target)
