"""Select a day's digest: which items, in which section, in which order.

The one place the digest and `monitor stories` are ranked: `rank_key`
orders items and stories alike (story score, then the lead's time, then
its id), and a story's score is its lead's score plus the coverage bonus of
`monitor.stories.coverage_bonus`. The store returns rows in published
order; nothing else sorts by score.

`build_digest` is pure (items in, a `Digest` out). `select_day` and
`stories_of_day` read what they need from the store and call it: they are
what the CLI, the digest job and the web app use for a day.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from core.types import FlaggedArticle, Match, StoryMember
from monitor import stories as st
from monitor import trends as tr
from monitor.config import Config
from monitor.digest.model import (
    Digest,
    DigestItem,
    FeedHealth,
    Section,
    Source,
    StoryEntry,
    TagTrend,
)
from storage import Feed, Store


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) in UTC of a calendar day in `tz` (23 or 25 hours long on DST changes)."""
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(timezone.utc)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(timezone.utc)
    return start, end


def digest_day_for(config: Config, now: datetime) -> date:
    """The day the scheduled digest covers at `now`: yesterday, or today so far (`[digest] day`).

    Also the default day of `monitor digest` and `monitor stories`.
    """
    today = now.astimezone(config.digest.zone).date()
    return today - timedelta(days=1) if config.digest.day == "yesterday" else today


def utc(t: datetime) -> datetime:
    """`t` in UTC. A naive time is taken as UTC, never as the machine's local time,
    so the same rows give the same digest on every machine."""
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def rank_key(score: float, published: datetime, ident: int) -> tuple[float, datetime, int]:
    """The one ranking: best score first; ties read in the order they happened, then by id,
    so the order never depends on the order the rows came in."""
    return (-score, utc(published), ident)


def _item_rank(item: DigestItem) -> tuple[float, datetime, int]:
    return rank_key(item.score, item.published, item.id)


def strongest_tag(item: DigestItem, tag_order: Sequence[str]) -> str:
    """The tag whose rules gave the item the most weight; ties go to the earlier tag in tag_order."""
    if not item.tags:
        return "other"
    rank = {t: i for i, t in enumerate(tag_order)}
    return min(item.tags, key=lambda t: (-item.tag_scores.get(t, 0.0), rank.get(t, len(rank)), t))


_FIELDS = frozenset({"title", "text", "author", "url", "feed"})


def _term(m: Match) -> str:
    # 'title:Microsoft' and 'Microsoft' are the same word found by two rules.
    head, sep, rest = m.term.partition(":")
    return (rest if sep and head in _FIELDS else m.term).strip('"').casefold()


def decisive_matches(matches: Sequence[Match]) -> list[Match]:
    """The matches that decided the score, for highlighting.

    A term every matching rule needed (on this beat: the two companies'
    names, which open nearly every rule) tells the reader nothing about why
    this item scored more than another; the terms particular to some rules
    do. So a term matched by every rule that fired is left out, unless that
    leaves nothing (one rule fired: all its terms decided). The full list
    stays in `DigestItem.matches` (and the JSON `matches`).
    """
    by_rule: dict[str, set[str]] = {}
    for m in matches:
        by_rule.setdefault(m.rule, set()).add(_term(m))
    if len(by_rule) < 2:
        return list(matches)
    shared = set.intersection(*by_rule.values())
    kept = [m for m in matches if _term(m) not in shared]
    return kept or list(matches)


def build_digest(
    day: date,
    tz: ZoneInfo,
    items: list[DigestItem],
    feeds_failing: list[FeedHealth],
    *,
    tag_order: Sequence[str],
    generated_at: datetime,
    max_items_per_tag: int | None = None,
    trends: list[TagTrend] | None = None,
) -> Digest:
    """Sections per tag in `tag_order` (other tags after, alphabetically); each item once, under its strongest tag."""
    counts: dict[str, int] = {}
    by_tag: dict[str, list[DigestItem]] = {}
    seen: set[int] = set()
    for item in sorted(items, key=_item_rank):
        # An article delivered twice in the rows (e.g. by two feeds) is shown once.
        if item.id in seen:
            continue
        seen.add(item.id)
        item.highlights = decisive_matches(item.matches)
        for t in item.tags:
            counts[t] = counts.get(t, 0) + 1
        by_tag.setdefault(strongest_tag(item, tag_order), []).append(item)
    order = [t for t in tag_order if t in by_tag] + sorted(t for t in by_tag if t not in tag_order)
    limit = max_items_per_tag if max_items_per_tag and max_items_per_tag > 0 else None
    sections = [Section(t, by_tag[t][:limit], total=len(by_tag[t])) for t in order]
    ordered_counts = {t: counts[t] for t in [x for x in tag_order if x in counts] + sorted(set(counts) - set(tag_order))}
    return Digest(
        day=day,
        timezone=str(tz.key),
        generated_at=generated_at,
        counts=ordered_counts,
        feeds_failing=sorted(feeds_failing, key=lambda f: (f.name.casefold(), f.url)),
        sections=sections,
        trends=list(trends or []),
    )


def digest_item_ids(d: Digest) -> list[int]:
    return [i.id for i in d.items]


# ------------------------------------------------------------------ from the store


def digest_items(rows: Iterable[FlaggedArticle]) -> list[DigestItem]:
    return [
        DigestItem(
            id=r.id,
            url=r.link or r.url,
            title=r.title,
            feed=r.feed,
            published=r.published,
            score=r.score,
            tags=list(r.tags),
            tag_scores=dict(r.tag_scores),
            matches=list(r.matches),
            snippet_text=r.text,
        )
        for r in rows
    ]


def day_items(config: Config, store: Store, day: date) -> list[DigestItem]:
    """The day's digest items, one per story.

    For each story with flagged articles that day, the day's best one
    (by `rank_key`) fronts it; the other outlets that carried it (grouped
    copies and word-for-word links alike) are listed under "also covered
    by"; its score gains the coverage bonus; a story first seen before the
    day is marked developing.
    """
    tz = config.digest.zone
    start, end = day_bounds(day, tz)
    rows = store.flagged_between(start, end)
    items = digest_items(rows)
    story_of = {r.id: r.story_id for r in rows}
    groups: dict[int | tuple[str, int], list[DigestItem]] = {}
    for item in items:
        sid = story_of.get(item.id)
        groups.setdefault(sid if sid is not None else ("article", item.id), []).append(item)
    members: dict[int, list[StoryMember]] = {}
    for m in store.story_members(k for k in groups if isinstance(k, int)):
        members.setdefault(m.story_id, []).append(m)
    out = []
    for key, group in groups.items():
        best = min(group, key=_item_rank)
        story_rows = members.get(key, []) if isinstance(key, int) else []
        if story_rows and isinstance(key, int):
            seen_feeds = {best.feed}
            also = []
            for member in sorted(story_rows, key=lambda x: (x.published, x.article_id)):
                if member.feed not in seen_feeds:
                    seen_feeds.add(member.feed)
                    also.append(Source(feed=member.feed, url=member.url, title=member.title, published=member.published))
            best.also = also
            best.story_id = key
            best.score = round(best.score + st.coverage_bonus(len(seen_feeds)), 3)
            first = story_rows[0].story_first_seen
            best.first_seen = first
            best.developing = st.developing(first.astimezone(tz).date(), day, members_on_day=len(group))
        out.append(best)
    return out


def day_trends(config: Config, store: Store, day: date, *, days: int = 14) -> tuple[tr.TrendTable, tr.TrendTable]:
    """Per-tag daily counts ending on `day`: (flagged articles table, stories table), spikes marked."""
    tz = config.digest.zone
    first_day = day - timedelta(days=max(days, config.trend_window) + 1)
    start, _ = day_bounds(first_day, tz)
    _, end = day_bounds(day, tz)
    articles: dict[date, dict[str, int]] = {}
    story_sets: dict[date, dict[str, set[int]]] = {}
    for published, story_id, tags in store.flagged_tags_between(start, end):
        local = datetime.fromisoformat(published).astimezone(tz).date()
        for t in tags:
            articles.setdefault(local, {}).setdefault(t, 0)
            articles[local][t] += 1
            if story_id is not None:
                story_sets.setdefault(local, {}).setdefault(t, set()).add(story_id)
    stories = {d: {t: len(ids) for t, ids in per.items()} for d, per in story_sets.items()}
    began = store.first_activity()
    since = began.astimezone(tz).date() if began else None
    all_tags = set(config.digest.tag_order) | {t for per in articles.values() for t in per}
    kw = dict(day=day, days=days, window=config.trend_window, factor=config.spike_factor,
              min_count=config.spike_min_count, since=since, tags=all_tags)
    return tr.trend_table(articles, **kw), tr.trend_table(stories, **kw)  # type: ignore[arg-type]


def feed_health(feeds: Iterable[Feed], *, day_end: datetime, current: bool) -> list[FeedHealth]:
    """The failing feeds a digest ending at `day_end` reports.

    The store knows each feed's state now, not on a past day: a feed is
    listed when its current run of failures began before the day ended (so
    it was failing then too). A feed paused without a failure run (no
    `failing_since`) is listed only in a `current` digest (today's or the
    scheduled day's).
    """
    out = []
    for f in feeds:
        since = datetime.fromisoformat(f.failing_since) if f.failing_since else None
        if since is not None and since >= day_end:
            continue
        if since is None and not current:
            continue
        out.append(FeedHealth(
            name=f.display_name,
            url=f.url,
            failing_since=since,
            error_count=f.error_count,
            last_error=f.last_error or (f"disabled: {f.disabled}" if f.disabled else None),
        ))
    return out


def select_day(config: Config, store: Store, day: date, *, now: datetime) -> Digest:
    """A day's selection: what the digest files, the delivery and the web app show for `day`.

    Sections of ranked items (one per story), the day's counts per tag, the
    trends up to the day, and the feeds that were failing (see `feed_health`).
    """
    tz = config.digest.zone
    article_trends, _ = day_trends(config, store, day)
    shown = [r for r in article_trends.rows if r.total or r.tag in config.digest.tag_order]
    order = {t: i for i, t in enumerate(config.digest.tag_order)}
    shown.sort(key=lambda r: (order.get(r.tag, len(order)), r.tag))
    _, end = day_bounds(day, tz)
    current = day >= now.astimezone(tz).date() - timedelta(days=1)
    return build_digest(
        day,
        tz,
        day_items(config, store, day),
        feed_health(store.failing_feeds(), day_end=end, current=current),
        tag_order=config.digest.tag_order,
        generated_at=now,
        max_items_per_tag=config.digest.max_items_per_tag,
        trends=[TagTrend(r.tag, article_trends.days, r.counts, r.spike) for r in shown],
    )


def stories_of_day(config: Config, store: Store, day: date, *, include_unflagged: bool = False) -> list[StoryEntry]:
    """The day's stories (those with a flagged article that day, or all), ranked as the digest ranks, with members."""
    tz = config.digest.zone
    start, end = day_bounds(day, tz)
    by_story: dict[int, list[StoryMember]] = {}
    for r in store.stories_between(start, end):
        by_story.setdefault(r.story_id, []).append(r)
    flagged_tags: dict[int, set[str]] = {}
    for a in store.flagged_between(start, end):
        if a.story_id is not None:
            flagged_tags.setdefault(a.story_id, set()).update(a.tags)
    out = []
    for sid, rows in by_story.items():
        if not include_unflagged and sid not in flagged_tags:
            continue
        ms = [st.Member(m.article_id, m.title, m.url, m.feed, m.published, m.score) for m in rows]
        lead = st.lead(ms)
        first = rows[0].story_first_seen
        out.append(StoryEntry(
            id=sid,
            title=lead.title,
            url=lead.url,
            tags=sorted(flagged_tags.get(sid, set())),
            score=round(st.story_rank(ms), 3),
            first_seen=first,
            developing=st.developing(first.astimezone(tz).date(), day),
            outlets=len(st.outlets(ms)),
            members=[Source(feed=m.feed, url=m.url, title=m.title, published=m.published)
                     for m in sorted(ms, key=lambda x: (x.published, x.article_id))],
            lead_published=lead.published,
            lead_id=lead.article_id,
        ))
    out.sort(key=lambda s: rank_key(s.score, s.lead_published, s.lead_id))
    return out
