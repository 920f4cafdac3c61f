"""SQLite storage for the monitor (sqlite-utils). Imports nothing from the pipeline or rules."""

from core.types import StoryKey, content_hash
from storage.store import Feed, FeedUpdate, SaveStats, Store, iso, parse_iso

__all__ = ["Feed", "FeedUpdate", "SaveStats", "Store", "StoryKey", "content_hash", "iso", "parse_iso"]
