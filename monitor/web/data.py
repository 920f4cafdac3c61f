"""The one adapter between the web app and the digest's selection, ranking, stories and trends.

Every page that shows a day's items asks this module, which calls the same
service functions the digest files are built from (`day_items`,
`build_digest`, `trends`, `stories_of_day`). When the digest's building
moves, only this module changes.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from monitor import service
from monitor.config import Config


def day_digest(config: Config, store: Any, day: date, *, now: datetime) -> Any:
    """The day's digest (monitor.digest.Digest) exactly as the files would hold it, with trends."""
    from monitor import digest as dg

    article_trends, _ = service.trends(config, store, day)
    shown = [r for r in article_trends.rows if r.total or r.tag in config.digest.tag_order]
    order = {t: i for i, t in enumerate(config.digest.tag_order)}
    shown.sort(key=lambda r: (order.get(r.tag, len(order)), r.tag))
    return dg.build_digest(
        day,
        config.digest.zone,
        service.day_items(config, store, day),
        service.feed_health(store),
        tag_order=config.digest.tag_order,
        generated_at=now,
        max_items_per_tag=config.digest.max_items_per_tag,
        trends=[dg.TagTrend(r.tag, article_trends.days, r.counts, r.spike) for r in shown],
    )


def day_stories(config: Config, store: Any, day: date) -> list[dict[str, Any]]:
    return service.stories_of_day(config, store, day)


def title_pieces(item: Any) -> list[tuple[str, bool]]:
    from monitor import digest as dg

    return dg.title_pieces(item)


def snippet_pieces(item: Any) -> list[tuple[str, bool]]:
    from monitor import digest as dg

    return dg.snippet_pieces(item)


def safe_url(url: str) -> str | None:
    from monitor.digest import safe_url as _safe

    return _safe(url)


def today(config: Config, now: datetime) -> date:
    return now.astimezone(config.digest.zone).date()


def day_bounds(config: Config, day: date) -> tuple[datetime, datetime]:
    from monitor.digest import day_bounds as _bounds

    return _bounds(day, config.digest.zone)
