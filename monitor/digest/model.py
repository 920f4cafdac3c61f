"""The digest's records: what `select` chooses and `render` shows. Plain data, no behaviour beyond labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from core.types import Match


@dataclass
class Source:
    """Another outlet's article about the same story."""

    feed: str
    url: str
    title: str
    published: datetime


@dataclass
class DigestItem:
    id: int
    url: str
    title: str
    feed: str
    published: datetime  # aware; UTC or any zone (shown in the digest's zone)
    score: float
    tags: list[str]
    tag_scores: dict[str, float]
    matches: list[Match]
    snippet_text: str  # the clean text that 'text' match spans index into
    # Stories (filled when articles are grouped): the other outlets' copies,
    # and whether the story began on an earlier day and is still growing.
    story_id: int | None = None
    also: list[Source] = field(default_factory=list)
    developing: bool = False
    first_seen: datetime | None = None
    # The matches shown highlighted: those that decided the score (set by select.build_digest).
    highlights: list[Match] | None = None

    @property
    def shown_matches(self) -> list[Match]:
        return self.matches if self.highlights is None else self.highlights


@dataclass
class FeedHealth:
    name: str
    url: str
    failing_since: datetime | None
    error_count: int
    last_error: str | None


@dataclass
class Section:
    tag: str
    items: list[DigestItem]
    # Items filed under this tag that day, before max_items_per_tag cut the list.
    total: int | None = None

    @property
    def count_label(self) -> str:
        shown = len(self.items)
        total = shown if self.total is None else self.total
        return f"{shown}" if total == shown else f"{shown} of {total}"


@dataclass
class TagTrend:
    """Daily flagged counts for one tag, oldest first, ending on the digest day."""

    tag: str
    days: list[date]
    counts: list[int]
    spike: bool = False


@dataclass
class Digest:
    """One day's selection: sections of ranked items, the day's counts, trends and feed health.

    This is what the web app shows for a day and what every renderer reads.
    """

    day: date
    timezone: str
    generated_at: datetime
    counts: dict[str, int]
    feeds_failing: list[FeedHealth]
    sections: list[Section]
    trends: list[TagTrend] = field(default_factory=list)

    @property
    def items(self) -> list[DigestItem]:
        return [i for s in self.sections for i in s.items]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


# The web app's name for it: a day's selection is a Digest.
DaySelection = Digest


@dataclass
class StoryEntry:
    """One story of a day, as `monitor stories` lists it (ranked by the digest's formula)."""

    id: int
    title: str
    url: str
    tags: list[str]
    score: float
    first_seen: datetime
    developing: bool
    outlets: int
    members: list[Source]
    lead_published: datetime
    lead_id: int

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "url": self.url,
            "tags": self.tags,
            "score": self.score,
            "first_seen": self.first_seen.isoformat(),
            "developing": self.developing,
            "outlets": self.outlets,
            "members": [
                {"url": m.url, "feed": m.feed, "title": m.title, "published": m.published.isoformat()}
                for m in self.members
            ],
        }
