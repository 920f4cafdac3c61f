"""Shared data types: what the packages pass to each other.

This is the one leaf module that every package may import: `rules/` and
`storage/` use it so that they never need to import each other or the
pipeline. It must import nothing from the project and do no I/O.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import NamedTuple

_WS = re.compile(r"\s+")


class Match(NamedTuple):
    """Why a rule matched: one occurrence of one term in one field.

    ``start``/``end`` are character offsets into that field's clean text.
    A named tuple, not a dataclass: the rules engine makes one per
    occurrence on the hot path, and a tuple costs less than half as much.
    """

    rule: str
    term: str
    field: str
    start: int
    end: int


@dataclass(frozen=True)
class StoryKey:
    """Where a new article may join a story: its packed MinHash signature and LSH band keys.

    Computed by monitor.stories, stored and looked up by storage as opaque values.
    """

    signature: bytes
    band_keys: tuple[int, ...]  # as stored: one per band, in the article's period (see monitor.stories)


@dataclass
class Tagging:
    """What the rules concluded about one article."""

    score: float = 0.0
    flagged: bool = False
    tags: list[str] = field(default_factory=list)
    matches: list[Match] = field(default_factory=list)
    # Summed weight of the matching rules per tag: the digest files an
    # article under its strongest tag.
    tag_scores: dict[str, float] = field(default_factory=dict)


@dataclass
class Article:
    """One feed entry, parsed and cleaned, ready to be tagged and stored.

    ``url`` is the canonical URL (used for dedup); ``link`` is the link as the
    feed gave it. ``published`` is timezone-aware UTC; when the feed gave no
    date (or one in the future) it is the fetch time and
    ``published_from_feed`` is False.
    """

    guid: str
    url: str
    link: str
    title: str
    author: str
    published: datetime
    published_from_feed: bool
    categories: list[str] = field(default_factory=list)
    summary_html: str = ""
    summary_text: str = ""
    content_html: str = ""
    content_text: str = ""
    # The main text of the linked page (monitor.fulltext), when it was retrieved;
    # full_text_error says why it was not, when it was tried and failed.
    full_text: str = ""
    full_text_error: str | None = None

    @cached_property
    def text(self) -> str:
        """Summary, content and the page's full text as one clean text (what `text:` rules see).

        Built once per article object, so tagging and the story key read the
        very same string; after pickling (worker process to writer) it is
        rebuilt once from the same fields. Setting `full_text` later must
        drop the cached value (`Article.set_full_text`).
        """
        return combined_text(self.summary_text, self.content_text, self.full_text)

    @property
    def feed_text(self) -> str:
        """The text as the feed delivered it, without the retrieved page.

        The content hash is made of this: a page is fetched once, so a later
        poll of the same entry (which has no full text) must hash the same.
        """
        return self.text if not self.full_text else combined_text(self.summary_text, self.content_text)

    def set_full_text(self, text: str, error: str | None) -> None:
        self.full_text, self.full_text_error = text, error
        self.__dict__.pop("text", None)

    def __getstate__(self) -> dict[str, object]:
        # The combined text is derived: rebuilding it where the article is
        # unpickled is cheaper than carrying a second copy of the words.
        state = dict(self.__dict__)
        state.pop("text", None)
        return state


def combined_text(summary_text: str, content_text: str, full_text: str = "") -> str:
    """The one text `text:` match spans index into: summary, content, then the page's full text, once each.

    Feeds often repeat the summary as the content's first paragraph, and a
    page repeats what its feed carried; a text contained in the next is
    then kept once.
    """
    if content_text and summary_text:
        if summary_text in content_text:
            text = content_text
        else:
            text = summary_text + "\n" + content_text
    else:
        text = content_text or summary_text
    if full_text:
        if not text or text in full_text:
            return full_text
        return text + "\n" + full_text
    return text


def content_hash(title: str, text: str) -> str:
    """Fingerprint of an article's words: equal for word-for-word copies."""
    norm = _WS.sub(" ", f"{title}\n{text}").strip().casefold()
    return hashlib.sha1(norm.encode("utf-8", "surrogatepass")).hexdigest()


# --- what the ingest decider reads from the store and hands back to it -----------------------


@dataclass(frozen=True)
class KnownEntry:
    """An entry this feed delivered before, under identity key `key`."""

    key: str
    article_id: int
    content_hash: str
    title: str
    url: str
    owner_feed_id: int  # the feed whose version the article holds (the first to carry it)


@dataclass(frozen=True)
class KnownArticle:
    """A stored article found by canonical URL or by content hash."""

    id: int
    feed_id: int


@dataclass(frozen=True)
class StoryCandidate:
    """A stored article sharing story band keys with a new one (see `Store.story_candidates`)."""

    id: int
    story_id: int
    signature: bytes
    title: str
    published: datetime
    score: float
    feed_id: int


@dataclass
class EntryIntent:
    """What one entry of a fetch means for the store, as `monitor.ingest` decided it.

    ``action``: ``new`` (store an article and its entry), ``update`` (the
    feed edited an entry it delivered before: rewrite ``article_id``),
    ``link`` (another feed's article tells the same story: record this
    feed's entry pointing at ``article_id``), ``skip`` (nothing changed, or a
    copy whose later edits must not overwrite its first feed's version).
    A new article joins story ``story_id``, or the story started in this
    batch under ``new_story`` (an index), or none.
    """

    action: str
    key: str
    article: Article
    tagging: Tagging
    content_hash: str
    article_id: int | None = None
    story: StoryKey | None = None
    story_id: int | None = None
    new_story: int | None = None


# --- what the digest and the stories listing read from the store -------------------------------


@dataclass(frozen=True)
class FlaggedArticle:
    """A flagged article of a day, as `Store.flagged_between` returns it (the digest's input)."""

    id: int
    url: str  # canonical
    link: str  # as the feed linked it ('' when none)
    title: str
    feed: str  # the feed's display name
    published: datetime
    score: float
    tags: list[str]
    tag_scores: dict[str, float]
    matches: list[Match]
    text: str  # combined_text(summary, content): what `text` match spans index into
    story_id: int | None


@dataclass(frozen=True)
class StoryMember:
    """One outlet's copy of a story (`Store.story_members`): an article, or another feed's entry linked to it."""

    article_id: int
    story_id: int
    title: str
    url: str
    feed: str  # display name of the feed that carried this copy
    published: datetime
    score: float
    flagged: bool
    story_first_seen: datetime
