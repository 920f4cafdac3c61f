"""The ingest decider: what one fetch of a feed means for the store.

Pure, like reader's update decider: it reads no database and no clock.
Given the entries of one fetch and the rows the store found for them, it
returns an intent per entry (new / update / link / skip) and the story each
new article joins. `save_poll` is the one use case that wires it: read what
the decision needs, decide, apply, all in one transaction.

Entry identity, the whole policy (docs/architecture.md has the table):

1. An entry that truly repeats within a fetch (same guid, link, title and
   words) is kept once.
2. Its key is the feed's guid when that guid is unique within the fetch.
3. Otherwise (no guid, or one guid on several different items) the key is
   the canonical link plus the title; where those coincide too, plus the
   content hash; where even that coincides (items differing only in a guid
   that other items share), plus the guid.
4. A key the feed used before is the same entry: an update when its words,
   title or link changed, else nothing. Keys stored by earlier rules (the
   guid, or the link when there was no guid) still find their entry, but
   only when the title agrees, so a feed that links every item to its front
   page cannot fold a new item into an old one.
5. A new entry is a copy of another feed's article, and linked to it, when
   its canonical http(s) URL or its exact words match that article — but
   never when its own fetch presents that URL or those words as more than
   one item, never to an article of its own feed (its feed says it is a
   different item), and never twice to the same article in one fetch.
6. A copy's later edits do not overwrite the version its first feed gave.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from core.types import (
    Article,
    EntryIntent,
    KnownArticle,
    KnownEntry,
    StoryCandidate,
    StoryKey,
    Tagging,
    content_hash,
)
from monitor.stories import (
    ArticleSig,
    StoryBook,
    StorySig,
    distinctive_key,
    meeting_keys,
    template_shingles,
    unpack,
)
from storage import Feed, FeedUpdate, SaveStats, Store

# Dates a story window can be computed around: an article dated earlier
# (whatever a caller let through; clean already dates those first-seen) gets
# no story.
_EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Identity:
    """An entry's key, and the keys earlier rules may have stored it under."""

    index: int  # position in the fetch
    key: str
    # (key, the stored entry must have this title to count) tried after `key`
    older_keys: tuple[tuple[str, str | None], ...] = ()


def _composite(*parts: str) -> str:
    return "\n".join(parts)


def identify(articles: Sequence[Article], hashes: Sequence[str]) -> list[Identity]:
    """Rules 1-3: one identity per distinct item of the fetch, in feed order."""
    seen: set[tuple[str, str, str, str]] = set()
    kept: list[int] = []
    for i, a in enumerate(articles):
        whole = (a.guid, a.url, a.title, hashes[i])
        if whole in seen:
            continue
        seen.add(whole)
        kept.append(i)
    guids = Counter(articles[i].guid for i in kept if articles[i].guid)
    plain = [i for i in kept if not (articles[i].guid and guids[articles[i].guid] == 1)]
    by_link_title = Counter(_composite(articles[i].url, articles[i].title) for i in plain)
    by_link_title_hash = Counter(_composite(articles[i].url, articles[i].title, hashes[i]) for i in plain)
    out: list[Identity] = []
    for i in kept:
        a = articles[i]
        link_title = _composite(a.url, a.title)
        with_hash = _composite(a.url, a.title, hashes[i])
        if a.guid and guids[a.guid] == 1:
            # Stored under the composite when this guid was shared in an earlier fetch.
            out.append(Identity(i, a.guid, ((link_title, None), (with_hash, None))))
            continue
        if by_link_title[link_title] == 1:
            key = link_title
        elif by_link_title_hash[with_hash] == 1:
            key = with_hash
        else:
            key = _composite(with_hash, a.guid)
        older: list[tuple[str, str | None]] = []
        if key != link_title:
            older.append((link_title, None) if by_link_title[link_title] == 1 else (link_title, a.title))
        # Before this policy an entry without a guid was keyed by its link (or
        # a hash of its words), and one with a guid by the guid alone.
        for legacy in (a.guid, a.url, a.url.removeprefix("urn:entry:")):
            if legacy and legacy != key:
                older.append((legacy, a.title))
        out.append(Identity(i, key, tuple(dict.fromkeys(older))))
    return out


def lookup_keys(identities: Sequence[Identity]) -> list[str]:
    """Every key the store must look up for these identities."""
    keys: dict[str, None] = {}
    for ident in identities:
        keys[ident.key] = None
        for k, _ in ident.older_keys:
            keys[k] = None
    return list(keys)


def decide_entries(
    feed_id: int,
    articles: Sequence[Article],
    taggings: Sequence[Tagging],
    hashes: Sequence[str],
    identities: Sequence[Identity],
    known: Mapping[str, KnownEntry],
    by_url: Mapping[str, KnownArticle],
    by_hash: Mapping[str, KnownArticle],
    story_keys: Sequence[StoryKey | None] | None = None,
) -> list[EntryIntent]:
    """Rules 4-6: an intent per identity. `by_hash` holds only other feeds' articles."""
    claimed: set[int] = set()
    matched: dict[int, KnownEntry] = {}
    # First every entry that matches its own key, then the older keys: an
    # item whose key is exact must not lose its entry to a neighbour's guess.
    for ident in identities:
        entry = known.get(ident.key)
        if entry is not None:
            matched[ident.index] = entry
            claimed.add(entry.article_id)
    for ident in identities:
        if ident.index in matched:
            continue
        for key, title in ident.older_keys:
            entry = known.get(key)
            if entry is None or entry.article_id in claimed:
                continue
            if title is not None and entry.title != title:
                continue
            matched[ident.index] = entry
            claimed.add(entry.article_id)
            break
    kept = [ident.index for ident in identities]
    urls = Counter(articles[i].url for i in kept)
    words = Counter(hashes[i] for i in kept)
    intents: list[EntryIntent] = []
    for ident in identities:
        i = ident.index
        a, t, h = articles[i], taggings[i], hashes[i]
        band = story_keys[i] if story_keys is not None and i < len(story_keys) else None
        if band is not None and a.published < _EARLIEST:
            band = None  # no story window can be computed around it
        entry = matched.get(i)
        if entry is not None:
            unchanged = entry.content_hash == h and entry.title == a.title and entry.url == a.url
            action = "skip" if unchanged or entry.owner_feed_id != feed_id else "update"
            intents.append(EntryIntent(action, entry.key, a, t, h, article_id=entry.article_id))
            continue
        copy = None
        if a.url.startswith(("http://", "https://")) and urls[a.url] == 1:
            found = by_url.get(a.url)
            if found is not None and found.feed_id != feed_id and found.id not in claimed:
                copy = found
        if copy is None and words[h] == 1:
            found = by_hash.get(h)
            if found is not None and found.feed_id != feed_id and found.id not in claimed:
                copy = found
        if copy is not None:
            claimed.add(copy.id)
            intents.append(EntryIntent("link", ident.key, a, t, h, article_id=copy.id))
            continue
        intents.append(EntryIntent("new", ident.key, a, t, h, story=band))
    return intents


def discount_template(intents: Sequence[EntryIntent], fetch_keys: Sequence[StoryKey | None]) -> None:
    """Drop the feed's template shingles from each new article's story key, before candidates are looked up.

    The template is what recurs across the whole fetch (`fetch_keys`: every
    item's key, old ones too), so it is the same whichever items are new; the
    stored fingerprint is the distinctive one, so a later article compares
    with it the same way whichever feed arrived first. Keys made by
    `stories.fetch_story_keys` (in the workers) are distinctive already:
    no template is found again and nothing is recomputed here.
    """
    fps = [unpack(k.signature) for k in fetch_keys if k is not None]
    template = template_shingles(fps)
    if not template:
        return
    for intent in intents:
        if intent.action == "new" and intent.story is not None:
            intent.story = distinctive_key(intent.story, template, intent.article.published)


def place_stories(
    intents: Sequence[EntryIntent],
    candidates: Mapping[int, Sequence[StoryCandidate]],
    *,
    window: timedelta,
    spans: Mapping[int, tuple[datetime, datetime]] | None = None,
    lookups: Mapping[int, Sequence[int]] | None = None,
) -> dict[int, set[int]]:
    """The story each new article joins: a stored one, one started earlier in this batch, or a new one.

    `candidates` maps an intent's position to the stored articles sharing its
    band keys; `spans` gives their stories' (first, last) published times, so
    no story grows past `window` from its first article. Articles of the same
    batch are candidates for each other, so a feed carrying two reports of
    one event groups them on the first poll. An article that is the same
    story as members of several stories merges them (`StoryBook`). Sets
    ``story_id`` or ``new_story`` on the intents (and leaves articles without
    a story key alone); returns the stored stories to merge: survivor ->
    the stories it absorbs. `lookups` (optional) are the intents' `meeting_keys`
    when the caller made them already.
    """
    book = StoryBook(window, spans)
    batch: list[tuple[StorySig, set[int]]] = []
    refs: dict[int, int] = {}
    for n, intent in enumerate(intents):
        if intent.action != "new" or intent.story is None:
            continue
        a = intent.article
        bands = set(intent.story.band_keys)
        meets = set(lookups[n]) if lookups and n in lookups else set(
            meeting_keys(intent.story.band_keys, a.published, window))
        stored = [
            StorySig(c.id, c.story_id, unpack(c.signature), c.title, c.published)
            for c in candidates.get(n, ())
        ]
        # Pending stories get negative refs so they never collide with stored ones.
        pending = [sig for sig, keys in batch if keys & meets]
        sig = unpack(intent.story.signature)
        refs[n] = book.place(ArticleSig(a.title, sig, a.published), stored + pending, new_ref=-(n + 1))
        batch.append((StorySig(-(n + 1), refs[n], sig, a.title, a.published), bands))
    started: dict[int, int] = {}
    for n, ref in refs.items():
        root = book.find(ref)
        if root > 0:
            intents[n].story_id = root
        else:
            intents[n].new_story = started.setdefault(root, len(started))
    return book.merged


def _encodable(a: Article) -> bool:
    """Whether SQLite can bind every text of the article (clean replaces lone surrogates; a caller may not have)."""
    try:
        for text in (a.guid, a.url, a.link, a.title, a.author, a.summary_html, a.content_html, a.text, *a.categories):
            text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def save_poll(
    store: Store,
    feed: Feed,
    update: FeedUpdate,
    items: Sequence[tuple[Article, Tagging]],
    *,
    now: datetime,
    rules_version: str | None = None,
    story_keys: Sequence[StoryKey | None] | None = None,
    story_window: timedelta = timedelta(days=3),
    hashes: Sequence[str] | None = None,
) -> SaveStats:
    """Store one feed's poll, all or nothing: read what the decision needs, decide, apply.

    A new article with a story key joins the story `place_stories` picks
    among the articles sharing a band key within `story_window`, or starts
    one. Without story keys no story is placed. `hashes`, one per item,
    are the items' content hashes when the caller computed them already
    (the pipeline does, in its worker processes).
    """
    keys: list[StoryKey | None] = list(story_keys) if story_keys is not None else [None] * len(items)
    given: Sequence[str | None] = hashes if hashes is not None else [None] * len(items)
    kept: list[tuple[Article, Tagging, StoryKey | None, str | None]] = []
    unstorable: list[str] = []
    for (a, t), k, h in zip(items, keys, given):
        if _encodable(a):
            kept.append((a, t, k, h))
        else:
            unstorable.append(f"{a.link!r:.120}: text that cannot be encoded")
    articles = [a for a, _, _, _ in kept]
    taggings = [t for _, t, _, _ in kept]
    kept_keys = [k for _, _, k, _ in kept]
    hashes = [h if h is not None else content_hash(a.title, a.feed_text) for a, _, _, h in kept]
    identities = identify(articles, hashes)
    with store.transaction():
        if identities:
            # Other writers (workers on other machines) wait from here to this feed's commit, so
            # what is read below still holds when it is written.
            store.hold_identity_lock()
        known = store.known_entries(feed.id, lookup_keys(identities))
        by_url = store.articles_by_url({articles[i.index].url for i in identities})
        by_hash = store.articles_by_hash({hashes[i.index] for i in identities}, other_than_feed=feed.id)
        intents = decide_entries(
            feed.id, articles, taggings, hashes, identities, known, by_url, by_hash, kept_keys
        )
        discount_template(intents, kept_keys)
        lookups = {
            n: meeting_keys(intent.story.band_keys, intent.article.published, story_window)
            for n, intent in enumerate(intents)
            if intent.action == "new" and intent.story is not None
        }
        candidates = {
            n: store.story_candidates(keys, around=intents[n].article.published, window=story_window)
            for n, keys in lookups.items()
        }
        spans = store.story_spans({c.story_id for found in candidates.values() for c in found})
        merges = place_stories(intents, candidates, window=story_window, spans=spans, lookups=lookups)
        for survivor, absorbed in merges.items():
            store.merge_stories(survivor, absorbed)
        return store.apply_poll(feed, update, intents, now=now, rules_version=rules_version, dropped=unstorable)
