"""Digest building and rendering: golden files, ranking, sections, time zones, index and Atom feed.

Everything here is pure (rows in, text out) except write_digest/write_index,
which write into tmp_path. Regenerate the golden files after an intended
change with `UPDATE_GOLDEN=1 python -m pytest tests/test_digest_render.py`,
then read the diff.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.types import Match
from monitor.digest import (
    Digest,
    DigestItem,
    FeedHealth,
    Source,
    TagTrend,
    build_digest,
    day_bounds,
    digest_item_ids,
    email_subject,
    render_html,
    render_json,
    render_markdown,
    write_digest,
    write_index,
)
from monitor.digest.select import decisive_matches

GOLDEN = Path(__file__).parent / "data" / "digest"
BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc
DAY = date(2026, 11, 23)
GENERATED = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
TAG_ORDER = ["partnership", "azure", "ipo", "governance"]


def at(hhmm: str, day: date = DAY, tz: ZoneInfo = BERLIN) -> datetime:
    """A local time on `day` in `tz`, as the store would hand it over (UTC)."""
    h, m = (int(x) for x in hhmm.split(":"))
    return datetime(day.year, day.month, day.day, h, m, tzinfo=tz).astimezone(UTC)


def item(
    id: int,
    title: str,
    feed: str,
    published: datetime,
    tag_scores: dict[str, float],
    text: str = "",
    *,
    title_terms: tuple[str, ...] = (),
    text_terms: tuple[str, ...] = (),
    url: str | None = None,
    score: float | None = None,
    **extra: object,
) -> DigestItem:
    """A DigestItem whose matches point at the real offsets of the given terms."""
    matches = []
    for fld, source, terms in (("title", title, title_terms), ("text", text, text_terms)):
        for term in terms:
            start = source.find(term)
            assert start >= 0, f"{term!r} not in {fld} of item {id}"
            matches.append(Match(f"{term.lower().replace(' ', '-')}-rule", term.lower(), fld, start, start + len(term)))
    return DigestItem(
        id=id,
        url=url if url is not None else f"https://news.example/{id}",
        title=title,
        feed=feed,
        published=published,
        score=score if score is not None else sum(tag_scores.values()),
        tags=list(tag_scores),
        tag_scores=dict(tag_scores),
        matches=matches,
        snippet_text=text,
        **extra,  # type: ignore[arg-type]
    )


def realistic_items() -> list[DigestItem]:
    """Ten flagged articles of one Berlin day, written for these tests."""
    return [
        item(
            101, "Microsoft and OpenAI sign a revised partnership agreement", "Tech Ledger", at("09:14"),
            {"partnership": 6.0, "azure": 2.0, "governance": 1.5},
            "The two companies said on Monday that the revised agreement keeps Azure as the main cloud for "
            "model training, while OpenAI gains room to buy compute elsewhere. The nonprofit board keeps "
            "control of the capped-profit arm, according to a filing seen by reporters.",
            title_terms=("revised partnership",), text_terms=("revised agreement", "Azure", "nonprofit board"),
            also=[
                Source("Daily Wire Service", "https://wire.example/ms-oai-deal", "Revised deal signed", at("09:40")),
                Source("Cloud Weekly", "https://cloudweekly.example/deal", "What the new deal means for Azure", at("11:02")),
            ],
            developing=True, story_id=7,
        ),
        item(
            102, "Analysts weigh what the new terms mean for revenue sharing", "Market Notes", at("13:05"),
            {"partnership": 4.0},
            "Revenue sharing between the partners would step down over the next decade, two analysts wrote.",
            text_terms=("Revenue sharing",),
        ),
        item(
            103, "Exclusive cloud clause narrowed in new contract", "Cloud Weekly", at("08:30"),
            {"azure": 4.0, "partnership": 1.0},
            "The exclusive cloud clause now covers training runs only; inference may run on other providers.",
            title_terms=("cloud clause",), text_terms=("exclusive cloud",),
        ),
        item(
            104, "Azure capacity expansion announced for three regions", "Cloud Weekly", at("16:45"),
            {"azure": 3.0},
            "New data centre capacity in three regions is meant to serve large model customers first.",
            title_terms=("Azure",),
        ),
        item(
            105, "Report: OpenAI prepares paperwork for a possible listing", "Finance Brief", at("07:50"),
            {"ipo": 5.0, "governance": 1.0},
            "People familiar with the plans said an initial public offering could come after the restructuring "
            "is complete, though no bank has been hired.",
            title_terms=("possible listing",), text_terms=("initial public offering", "restructuring"),
        ),
        item(
            106, "Board seats and voting rights: a short explainer", "Policy Desk", at("18:20"),
            {"governance": 3.0},
            "Who appoints the board after the restructuring, and what the foundation keeps.",
            text_terms=("restructuring",),
        ),
        item(
            107, "Regulators ask questions about cloud and model tie-ups", "Policy Desk", at("10:00"),
            {"antitrust": 3.5},
            "Competition authorities sent questionnaires to several cloud providers and model makers.",
            text_terms=("Competition authorities",),
        ),
        item(
            108, "Partnership timeline, 2019 to today", "Tech Ledger", at("13:05"),
            {"partnership": 4.0},
            "A look back at each investment round and what it bought.",
            title_terms=("Partnership",),
        ),
        item(
            109, "Partnership terms: the questions still open", "Market Notes", at("13:05"),
            {"partnership": 4.0},
            "Three things the announcement did not settle.",
        ),
        item(
            110, "IPO talk lifts shares of cloud suppliers", "Finance Brief", at("21:35"),
            {"ipo": 2.5},
            "Shares of several suppliers rose in late trading.",
            title_terms=("IPO",),
        ),
    ]


def failing_feeds() -> list[FeedHealth]:
    return [
        FeedHealth("Wire Archive", "https://archive.example/feed.xml", datetime(2026, 11, 21, 4, 0, tzinfo=UTC), 12, "HTTP 503"),
    ]


def trends() -> list[TagTrend]:
    days = [DAY - timedelta(days=13 - n) for n in range(14)]
    return [
        TagTrend("partnership", days, [1, 0, 2, 1, 1, 0, 0, 1, 2, 1, 0, 1, 1, 5], spike=True),
        TagTrend("ipo", days, [0, 0, 1, 0, 0, 0, 2, 1, 0, 0, 1, 0, 1, 2]),
    ]


def realistic_digest(**kw: object) -> Digest:
    return build_digest(
        DAY, BERLIN, realistic_items(), failing_feeds(), tag_order=TAG_ORDER, generated_at=GENERATED,
        trends=trends(), **kw  # type: ignore[arg-type]
    )


def empty_digest() -> Digest:
    return build_digest(DAY, BERLIN, [], [], tag_order=TAG_ORDER, generated_at=GENERATED)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8"), f"{name} changed: run with UPDATE_GOLDEN=1 and review the diff"


# ------------------------------------------------------------------ golden files


@pytest.mark.parametrize(
    ("name", "build", "render"),
    [
        ("day.md", realistic_digest, render_markdown),
        ("day.json", realistic_digest, render_json),
        ("empty.md", empty_digest, render_markdown),
        ("empty.json", empty_digest, render_json),
    ],
)
def test_golden(name: str, build, render) -> None:  # type: ignore[no-untyped-def]
    check_golden(name, render(build()))


@pytest.mark.parametrize("render", [render_markdown, render_html, render_json])
def test_building_twice_gives_byte_identical_output(render) -> None:  # type: ignore[no-untyped-def]
    first = render(realistic_digest()).encode("utf-8")
    # The rows may come back in any order: the output must not depend on it.
    shuffled = build_digest(
        DAY, BERLIN, list(reversed(realistic_items())), list(reversed(failing_feeds())),
        tag_order=TAG_ORDER, generated_at=GENERATED, trends=trends(),
    )
    assert render(shuffled).encode("utf-8") == first
    assert render(realistic_digest()).encode("utf-8") == first


def test_realistic_markdown_reads_as_promised() -> None:
    md = render_markdown(realistic_digest())
    assert "**10 flagged.** By tag: partnership 5, azure 3, ipo 2, governance 3, antitrust 1. (An item counts" in md
    # The multi-tag article appears once, under its strongest tag, listing the others.
    assert md.count("https://news.example/101") == 1
    assert "   Also tagged: azure, governance  \n" in md
    assert "[Microsoft and OpenAI sign a **revised partnership** agreement](https://news.example/101) *(developing)*" in md
    assert "**revised agreement** keeps **Azure**" in md
    assert "Also covered by: [Daily Wire Service](https://wire.example/ms-oai-deal), [Cloud Weekly]" in md
    assert "- [Wire Archive](https://archive.example/feed.xml): since 2026-11-21 05:00 CET, 12 errors: HTTP 503" in md
    # Times are shown in the digest zone: 09:14 Berlin is 08:14 UTC.
    assert "Tech Ledger, 09:14, score 9.5" in md


def test_empty_day_says_so_plainly() -> None:
    d = empty_digest()
    md, page, doc = render_markdown(d), render_html(d), json.loads(render_json(d))
    assert "No flagged articles on 2026-11-23." in md
    assert "No flagged articles on 2026-11-23." in page
    assert doc["items"] == [] and doc["counts"] == {} and doc["sections"] == []
    assert email_subject(d) == "Partnership digest 2026-11-23: 0 items"
    assert "## " not in md  # no empty sections, no feed-health heading


# ------------------------------------------------------------------ sections and ranking


def sections(d: Digest) -> list[tuple[str, list[int]]]:
    return [(s.tag, [i.id for i in s.items]) for s in d.sections]


def test_each_item_once_under_its_strongest_tag_sections_in_tag_order() -> None:
    d = realistic_digest()
    assert sections(d) == [
        ("partnership", [101, 102, 108, 109]),
        ("azure", [103, 104]),
        ("ipo", [105, 110]),
        ("governance", [106]),
        ("antitrust", [107]),  # not in tag_order: after the known tags
    ]
    assert sorted(digest_item_ids(d)) == list(range(101, 111))
    doc = json.loads(render_json(d))
    assert {i["id"]: i["section"] for i in doc["items"]}[101] == "partnership"
    assert next(i for i in doc["items"] if i["id"] == 101)["tags"] == ["partnership", "azure", "governance"]


def test_counts_are_per_tag_over_all_tags_of_every_item() -> None:
    d = realistic_digest()
    # 101 counts for partnership, azure and governance though it is shown once.
    assert d.counts == {"partnership": 5, "azure": 3, "ipo": 2, "governance": 3, "antitrust": 1}
    assert list(d.counts) == ["partnership", "azure", "ipo", "governance", "antitrust"]


T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # higher score first, whatever the time or id
        ([(1, 3.0, T0), (2, 5.0, T0 + timedelta(hours=5))], [2, 1]),
        # equal score: earlier first
        ([(1, 4.0, T0 + timedelta(minutes=1)), (2, 4.0, T0)], [2, 1]),
        # equal score and time: lower id first
        ([(9, 4.0, T0), (3, 4.0, T0)], [3, 9]),
        # the same instant in another zone is a tie on time, not an earlier item
        ([(5, 4.0, T0), (4, 4.0, T0.astimezone(ZoneInfo("America/Los_Angeles")))], [4, 5]),
        # near miss: 0.01 more score beats an earlier time
        ([(1, 4.0, T0), (2, 4.01, T0 + timedelta(hours=1))], [2, 1]),
        # sub-second differences count (an ISO-text sort would get this wrong)
        ([(1, 4.0, T0 + timedelta(microseconds=500_000)), (2, 4.0, T0 + timedelta(seconds=1)), (3, 4.0, T0)], [3, 1, 2]),
    ],
)
def test_ranking_within_a_section(rows: list[tuple[int, float, datetime]], expected: list[int]) -> None:
    items = [item(i, f"Story {i}", "Feed", t, {"ipo": 1.0}, score=s) for i, s, t in rows]
    for order in (items, items[::-1]):
        d = build_digest(DAY, UTC_ZONE, order, [], tag_order=["ipo"], generated_at=GENERATED)
        assert sections(d) == [("ipo", expected)]


UTC_ZONE = ZoneInfo("UTC")


@pytest.mark.parametrize(
    ("tag_order", "expected"),
    [
        (["ipo", "azure", "partnership"], ["ipo", "azure", "partnership", "antitrust", "zeta"]),
        (["partnership"], ["partnership", "antitrust", "azure", "ipo", "zeta"]),
        ([], ["antitrust", "azure", "ipo", "partnership", "zeta"]),
        # a tag in the order with no items makes no section
        (["governance", "zeta"], ["zeta", "antitrust", "azure", "ipo", "partnership"]),
    ],
)
def test_section_order_follows_tag_order_unknown_tags_after(tag_order: list[str], expected: list[str]) -> None:
    items = [item(n, f"Story {n}", "F", T0, {t: 1.0}) for n, t in enumerate(["zeta", "ipo", "partnership", "antitrust", "azure"])]
    d = build_digest(DAY, UTC_ZONE, items, [], tag_order=tag_order, generated_at=GENERATED)
    assert [s.tag for s in d.sections] == expected
    assert list(d.counts) == expected


@pytest.mark.parametrize(
    ("scores", "tag_order", "section"),
    [
        ({"azure": 2.0, "ipo": 3.0}, ["azure", "ipo"], "ipo"),  # the strongest wins over the order
        ({"azure": 3.0, "ipo": 3.0}, ["ipo", "azure"], "ipo"),  # a tie goes to the earlier tag in the order
        ({"azure": 3.0, "ipo": 3.0}, ["azure", "ipo"], "azure"),
        ({"zz": 3.0, "aa": 3.0}, [], "aa"),  # tie among unknown tags: alphabetical
    ],
)
def test_strongest_tag(scores: dict[str, float], tag_order: list[str], section: str) -> None:
    d = build_digest(DAY, UTC_ZONE, [item(1, "S", "F", T0, scores)], [], tag_order=tag_order, generated_at=GENERATED)
    assert sections(d) == [(section, [1])]


def test_max_items_per_tag_keeps_the_best_and_says_how_many_there_were() -> None:
    d = realistic_digest(max_items_per_tag=2)
    assert sections(d)[0] == ("partnership", [101, 102])
    assert [len(s.items) for s in d.sections] == [2, 2, 2, 1, 1]
    md = render_markdown(d)
    assert "## partnership (2 of 4)" in md and "## azure (2)" in md
    assert "<h2>partnership (2 of 4)</h2>" in render_html(d)
    doc = json.loads(render_json(d))
    assert doc["sections"][0] == {"tag": "partnership", "items": [101, 102], "total": 4}
    assert doc["counts"]["partnership"] == 5  # the day's counts are not cut
    assert 108 not in digest_item_ids(d)
    for no_limit in (None, 0):
        assert sections(realistic_digest(max_items_per_tag=no_limit))[0] == ("partnership", [101, 102, 108, 109])


def test_the_same_article_twice_in_the_rows_is_shown_once() -> None:
    rows = realistic_items()
    d = build_digest(DAY, BERLIN, rows + [rows[0]], [], tag_order=TAG_ORDER, generated_at=GENERATED)
    assert digest_item_ids(d).count(101) == 1 and d.counts["partnership"] == 5


# ------------------------------------------------------------------ time zones


@pytest.mark.parametrize(
    ("zone", "day", "start", "hours"),
    [
        ("Europe/Berlin", date(2026, 3, 28), datetime(2026, 3, 27, 23, 0, tzinfo=UTC), 24),
        ("Europe/Berlin", date(2026, 3, 29), datetime(2026, 3, 28, 23, 0, tzinfo=UTC), 23),  # spring forward
        ("Europe/Berlin", date(2026, 3, 30), datetime(2026, 3, 29, 22, 0, tzinfo=UTC), 24),
        ("Europe/Berlin", date(2026, 10, 25), datetime(2026, 10, 24, 22, 0, tzinfo=UTC), 25),  # fall back
        ("America/Los_Angeles", date(2026, 3, 8), datetime(2026, 3, 8, 8, 0, tzinfo=UTC), 23),
        ("America/Los_Angeles", date(2026, 11, 1), datetime(2026, 11, 1, 7, 0, tzinfo=UTC), 25),
        ("America/Los_Angeles", date(2026, 11, 2), datetime(2026, 11, 2, 8, 0, tzinfo=UTC), 24),
        ("UTC", date(2026, 3, 29), datetime(2026, 3, 29, 0, 0, tzinfo=UTC), 24),
        ("Asia/Kolkata", date(2026, 3, 29), datetime(2026, 3, 28, 18, 30, tzinfo=UTC), 24),
    ],
)
def test_day_bounds(zone: str, day: date, start: datetime, hours: int) -> None:
    lo, hi = day_bounds(day, ZoneInfo(zone))
    assert lo == start and lo.tzinfo == UTC and hi.tzinfo == UTC
    assert hi - lo == timedelta(hours=hours)
    # Consecutive days tile the time line: no gap, no overlap.
    assert day_bounds(day + timedelta(days=1), ZoneInfo(zone))[0] == hi


@pytest.mark.parametrize(
    ("utc_time", "berlin_day"),
    [
        (datetime(2026, 3, 28, 23, 30, tzinfo=UTC), date(2026, 3, 29)),  # 00:30 CET: already the 29th
        (datetime(2026, 3, 28, 22, 59, 59, tzinfo=UTC), date(2026, 3, 28)),  # near miss: 23:59:59 CET
        (datetime(2026, 3, 28, 23, 0, tzinfo=UTC), date(2026, 3, 29)),  # the first instant of the day
        (datetime(2026, 3, 29, 21, 59, tzinfo=UTC), date(2026, 3, 29)),  # 23:59 CEST, end of the short day
        (datetime(2026, 3, 29, 22, 0, tzinfo=UTC), date(2026, 3, 30)),
    ],
)
def test_an_instant_belongs_to_its_local_day(utc_time: datetime, berlin_day: date) -> None:
    for d in (berlin_day - timedelta(days=1), berlin_day, berlin_day + timedelta(days=1)):
        lo, hi = day_bounds(d, BERLIN)
        assert (lo <= utc_time < hi) == (d == berlin_day)


def test_late_utc_article_is_in_the_next_berlin_days_digest_at_its_local_time() -> None:
    late = item(1, "Late night agreement news", "Wire", datetime(2026, 3, 28, 23, 30, tzinfo=UTC), {"partnership": 3.0})
    day = date(2026, 3, 29)
    lo, hi = day_bounds(day, BERLIN)
    rows = [r for r in [late] if lo <= r.published < hi]  # what flagged_between(lo, hi) returns
    d = build_digest(day, BERLIN, rows, [], tag_order=TAG_ORDER, generated_at=datetime(2026, 3, 30, 5, 0, tzinfo=UTC))
    md = render_markdown(d)
    assert digest_item_ids(d) == [1]
    assert "Wire, 00:30, score 3" in md and "Wire, 23:30" not in md
    assert "generated 2026-03-30 07:00 CEST" in md  # after the switch to summer time
    assert json.loads(render_json(d))["items"][0]["published"] == "2026-03-28T23:30:00+00:00"  # JSON stays UTC
    los_angeles = build_digest(
        date(2026, 3, 28), ZoneInfo("America/Los_Angeles"), [late], [], tag_order=[], generated_at=GENERATED
    )
    assert "Wire, 16:30, score 3" in render_markdown(los_angeles)


def test_a_naive_time_is_read_as_utc_not_as_the_machines_zone() -> None:
    naive = item(1, "Story", "Wire", datetime(2026, 3, 28, 23, 30), {"ipo": 1.0})
    d = build_digest(date(2026, 3, 29), BERLIN, [naive], [], tag_order=[], generated_at=GENERATED)
    assert "Wire, 00:30" in render_markdown(d)
    assert json.loads(render_json(d))["items"][0]["published"] == "2026-03-28T23:30:00+00:00"


# ------------------------------------------------------------------ snippets


def test_long_text_is_cut_around_the_first_highlight_on_word_boundaries() -> None:
    filler = " ".join(f"word{n}" for n in range(120))
    text = f"{filler} the Microsoft OpenAI agreement was revised {filler}"
    d = build_digest(
        DAY, UTC_ZONE, [item(1, "T", "F", T0, {"ipo": 1.0}, text, text_terms=("agreement",))], [],
        tag_order=[], generated_at=GENERATED,
    )
    snippet = json.loads(render_json(d))["items"][0]["snippet"]
    assert snippet.startswith("…word") and snippet.endswith("…")
    assert "agreement" in snippet and len(snippet) <= 242
    assert all(part.startswith("word") or part in {"the", "Microsoft", "OpenAI", "agreement", "was", "revised"}
               for part in snippet.strip("…").split())  # no word cut in half
    assert "**agreement**" in render_markdown(d)


def test_highlight_keeps_the_spaces_around_it() -> None:
    title = "Deal between Microsoft and OpenAI revised"
    it = item(1, title, "F", T0, {"ipo": 1.0}, title_terms=("Microsoft and OpenAI",))
    # A span that swallows the spaces on either side (a sloppy rule) still reads right.
    it.matches = [Match("r", "t", "title", title.index(" Microsoft"), title.index(" revised") + 1)]
    d = build_digest(DAY, UTC_ZONE, [it], [], tag_order=[], generated_at=GENERATED)
    assert "[Deal between **Microsoft and OpenAI** revised](https://news.example/1)" in render_markdown(d)


@pytest.mark.parametrize(
    "bad",
    [Match("r", "t", "text", 5, 999), Match("r", "t", "text", -1, 3), Match("r", "t", "text", 4, 4), Match("r", "t", "body", 0, 4)],
)
def test_spans_outside_the_text_are_ignored(bad: Match) -> None:
    it = item(1, "T", "F", T0, {"ipo": 1.0}, "Azure news today")
    it.matches = [bad]
    d = build_digest(DAY, UTC_ZONE, [it], [], tag_order=[], generated_at=GENERATED)
    assert "   > Azure news today" in render_markdown(d)


# ------------------------------------------------------------------ files, index and feed


def test_write_digest_writes_the_asked_formats(tmp_path: Path) -> None:
    d = realistic_digest()
    paths = write_digest(d, tmp_path / "digests", ("md", "json"))
    assert [p.name for p in paths] == ["2026-11-23.md", "2026-11-23.json"]
    assert paths[0].read_text(encoding="utf-8") == render_markdown(d)
    assert not (tmp_path / "digests" / "2026-11-23.html").exists()
    assert sorted(p.name for p in (tmp_path / "digests").iterdir()) == ["2026-11-23.json", "2026-11-23.md"]  # no temp files


ATOM = "{http://www.w3.org/2005/Atom}"


def write_days(out: Path, days: list[date]) -> None:
    for n, day in enumerate(days):
        rows = [item(n * 10 + k, f"Story {day} #{k}", "Wire", at("12:00", day), {"ipo": 1.0}) for k in range(n + 1)]
        gen = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC) + timedelta(hours=6)
        write_digest(build_digest(day, BERLIN, rows, [], tag_order=[], generated_at=gen), out, ("json", "html"))


def test_index_lists_every_digest_newest_first_and_feed_has_recent_ones(tmp_path: Path) -> None:
    days = [date(2026, 11, 20), date(2026, 11, 23), date(2026, 11, 21), date(2026, 10, 31)]
    write_days(tmp_path, days)
    (tmp_path / "notes.json").write_text("{}")  # not a digest: ignored
    (tmp_path / "2026-11-22.json").write_text("{broken")  # unreadable: skipped, not fatal
    paths = write_index(tmp_path, generated_at=GENERATED, recent=3)
    assert [p.name for p in paths] == ["index.html", "feed.xml"]
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    hrefs = [part.split('"')[0] for part in index.split('<a href="')[1:]]
    assert hrefs == ["2026-11-23.html", "2026-11-21.html", "2026-11-20.html", "2026-10-31.html"]
    assert "2026-11-23</a>: 2 items: ipo 2" in index

    feed = ET.parse(tmp_path / "feed.xml").getroot()
    assert feed.tag == f"{ATOM}feed"
    for required in ("id", "title", "updated"):
        assert feed.find(f"{ATOM}{required}") is not None
    entries = feed.findall(f"{ATOM}entry")
    assert [e.find(f"{ATOM}link").get("href") for e in entries] == ["2026-11-23.html", "2026-11-21.html", "2026-11-20.html"]  # type: ignore[union-attr]
    assert len({e.findtext(f"{ATOM}id") for e in entries}) == 3
    assert entries[0].findtext(f"{ATOM}title") == "Partnership digest 2026-11-23: 2 items"
    assert entries[0].findtext(f"{ATOM}updated") == "2026-11-24T06:00:00+00:00"
    assert feed.findtext(f"{ATOM}updated") == "2026-11-24T06:00:00+00:00"  # the newest digest's time
    content = entries[0].findtext(f"{ATOM}content") or ""
    assert "<li>Story 2026-11-23 #0</li>" in content  # HTML, escaped once inside the XML


def test_index_with_no_digests(tmp_path: Path) -> None:
    write_index(tmp_path, generated_at=GENERATED)
    assert "No digests yet." in (tmp_path / "index.html").read_text(encoding="utf-8")
    feed = ET.parse(tmp_path / "feed.xml").getroot()
    assert feed.findall(f"{ATOM}entry") == [] and feed.findtext(f"{ATOM}updated") == "2026-11-24T06:00:00+00:00"


def test_index_links_come_from_the_file_name_not_its_contents(tmp_path: Path) -> None:
    write_days(tmp_path, [date(2026, 11, 20)])
    path = tmp_path / "2026-11-20.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["date"] = 'javascript:alert(1)//"><x'
    doc["generated_at"] = "not a time"
    path.write_text(json.dumps(doc), encoding="utf-8")
    write_index(tmp_path, generated_at=GENERATED)
    assert "javascript:" not in (tmp_path / "index.html").read_text(encoding="utf-8")
    entry = ET.parse(tmp_path / "feed.xml").getroot().find(f"{ATOM}entry")
    assert entry is not None and entry.find(f"{ATOM}link").get("href") == "2026-11-20.html"  # type: ignore[union-attr]
    assert entry.findtext(f"{ATOM}updated") == "2026-11-24T06:00:00+00:00"


def test_every_json_field_is_documented() -> None:
    """docs/digest-json.md has a table row for every key the JSON digest carries, and no stale ones."""
    doc_text = (Path(__file__).parent.parent / "docs" / "digest-json.md").read_text(encoding="utf-8")
    documented = set()
    for line in doc_text.splitlines():
        if line.startswith("| `"):
            documented.update(part.strip("` ") for part in line.split("|")[1].split(","))
    data = json.loads(render_json(realistic_digest()))
    keys: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if value is not data["counts"]:
                    keys.add(k)
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(data)
    assert keys - documented == set()
    assert documented - keys == set()


# ------------------------------------------------------------------ what is highlighted (issue 13)


def m(rule: str, term: str, field: str = "title", start: int = 0, end: int = 1) -> Match:
    return Match(rule, term, field, start, end)


@pytest.mark.parametrize(
    ("matches", "highlighted"),
    [
        # Three rules fired; all needed the company names: only their own terms decided.
        (
            [m("a", "Microsoft"), m("b", "title:Microsoft"), m("c", "Microsoft"),
             m("a", "OpenAI"), m("b", "title:OpenAI"), m("c", "OpenAI"),
             m("a", "partnership"), m("c", "renegotiat*")],
            {("a", "partnership"), ("c", "renegotiat*")},
        ),
        # The names in the text count as the same words as in the title.
        (
            [m("a", "Microsoft"), m("b", "Microsoft"), m("a", "Microsoft", "text"), m("a", "deal"), m("b", "IPO")],
            {("a", "deal"), ("b", "IPO")},
        ),
        # One rule: every term it matched decided.
        ([m("a", "Microsoft"), m("a", "OpenAI")], {("a", "Microsoft"), ("a", "OpenAI")}),
        # Near miss: a term only some rules needed is still highlighted.
        (
            [m("a", "Microsoft"), m("b", "Microsoft"), m("c", "Altman"), m("a", "deal"), m("b", "deal")],
            {("a", "Microsoft"), ("b", "Microsoft"), ("c", "Altman"), ("a", "deal"), ("b", "deal")},
        ),
        # Rules that share every term: nothing would be left, so all are shown.
        ([m("a", "Microsoft"), m("b", "Microsoft")], {("a", "Microsoft"), ("b", "Microsoft")}),
        ([], set()),
    ],
)
def test_only_the_terms_that_decided_the_score_are_highlighted(
    matches: list[Match], highlighted: set[tuple[str, str]]
) -> None:
    assert {(x.rule, x.term) for x in decisive_matches(matches)} == highlighted


def test_the_digest_highlights_deciding_terms_and_the_json_says_which() -> None:
    title = "Microsoft and OpenAI renegotiate their partnership"
    matches = [
        Match(rule, "Microsoft", "title", 0, 9) for rule in ("relationship", "renegotiation")
    ] + [Match(rule, "OpenAI", "title", 14, 20) for rule in ("relationship", "renegotiation")] + [
        Match("renegotiation", "renegotiat*", "title", 21, 32), Match("relationship", "partnership", "title", 39, 50)
    ]
    it = item(1, title, "F", T0, {"partnership": 4.5})
    it.matches = matches
    d = build_digest(DAY, UTC_ZONE, [it], [], tag_order=[], generated_at=GENERATED)
    md = render_markdown(d)
    assert "[Microsoft and OpenAI **renegotiate** their **partnership**](https://news.example/1)" in md
    assert "<mark>Microsoft</mark>" not in render_html(d) and "<mark>renegotiate</mark>" in render_html(d)
    doc = json.loads(render_json(d))["items"][0]["matches"]
    assert len(doc) == 6  # every match is still reported
    assert {(x["term"], x["highlighted"]) for x in doc} == {
        ("Microsoft", False), ("OpenAI", False), ("renegotiat*", True), ("partnership", True)
    }


def test_feeds_failing_comes_after_the_news_in_both_formats() -> None:
    d = realistic_digest()
    md, page = render_markdown(d), render_html(d)
    assert md.index("## Feeds failing") > md.index("## antitrust (1)")
    assert md.rstrip().endswith("12 errors: HTTP 503")
    assert page.index("<h2>Feeds failing</h2>") > page.index("<h2>antitrust (1)</h2>")


def test_header_counts_are_labelled_and_a_day_is_not_called_today() -> None:
    md, page = render_markdown(realistic_digest()), render_html(realistic_digest())
    assert "listed once, under its strongest tag" in md and "listed once, under its strongest tag" in page
    assert "partnership 5" in md and "## partnership (4)" in md  # the two numbers, and the line that says why
    assert "today" not in md.replace("2019 to today", "")  # (an item's own title says "today")
    assert "(5 on 2026-11-23) **spike**" in md
