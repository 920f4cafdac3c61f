"""The one adapter between the web app and the digest's selection, ranking, stories and trends.

Every page that shows a day's items asks this module, which calls the same
function the digest files are built from (`monitor.digest.select.select_day`,
`stories_of_day`, the same ranking and trends). When the digest's building
moves, only this module changes.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from monitor.config import Config
from monitor.digest import render as rd
from monitor.digest import select as sel
from monitor.digest.model import Digest, DigestItem, StoryEntry


def day_digest(config: Config, store: Any, day: date, *, now: datetime) -> Digest:
    """The day's digest exactly as the files hold it: the digest's own selection, ranking and trends."""
    return sel.select_day(config, store, day, now=now)


def day_stories(config: Config, store: Any, day: date) -> list[StoryEntry]:
    return sel.stories_of_day(config, store, day)


def title_pieces(item: DigestItem) -> list[tuple[str, bool]]:
    return rd.title_pieces(item)


def snippet_pieces(item: DigestItem) -> list[tuple[str, bool]]:
    return rd.snippet_pieces(item)


def safe_url(url: str) -> str | None:
    return rd.safe_url(url)


def today(config: Config, now: datetime) -> date:
    return now.astimezone(config.digest.zone).date()


def day_bounds(config: Config, day: date) -> tuple[datetime, datetime]:
    return sel.day_bounds(day, config.digest.zone)
