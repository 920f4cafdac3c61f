"""Trends: spike detection on made-up count series, sparklines, the trends table and alert decisions."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest

from monitor import trends as tr

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(
    "series, expected, why",
    [
        ([4] * 14 + [4], False, "flat"),
        ([4] * 14 + [7], False, "up, but under twice the median"),
        ([4] * 14 + [8], True, "twice the median"),
        ([1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8], False, "steady rise: today is under twice the median (4.5)"),
        ([0] * 14 + [2], False, "single spike under min_count"),
        ([0] * 14 + [3], True, "zero median: min_count alone decides"),
        ([1] * 14 + [3], True, "three where there was one"),
        ([9] * 7 + [0] * 7 + [3], False, "half busy, half quiet: median 4.5"),
        ([9] * 20 + [0] * 14 + [3], True, "busy days older than the window do not count"),
        ([], False, "no data"),
        ([5], True, "no history: zero median, min_count decides (the table guards this with min_history)"),
    ],
)
def test_spike(series: list[int], expected: bool, why: str) -> None:
    assert tr.spike(series) is expected, why


def test_spike_thresholds_are_configurable() -> None:
    s = [2] * 14 + [5]
    assert tr.spike(s) is True
    assert tr.spike(s, factor=3.0) is False
    assert tr.spike(s, min_count=6) is False
    # A short window sees only the recent quiet days.
    s2 = [20] * 10 + [1] * 4 + [5]
    assert tr.spike(s2) is False
    assert tr.spike(s2, window=4) is True


def test_trailing_median_excludes_today() -> None:
    assert tr.trailing_median([1, 2, 3, 100]) == 2.0
    assert tr.trailing_median([1, 2, 3, 4, 100], window=2) == 3.5
    assert tr.trailing_median([7]) == 0.0


@pytest.mark.parametrize(
    "series, expected",
    [
        ([0, 1, 2, 3, 4, 5, 6, 7], "▁▂▃▄▅▆▇█"),
        ([0, 0, 0], "▁▁▁"),
        ([5, 5], "██"),
        ([], ""),
        ([0, 14], "▁█"),
    ],
)
def test_sparkline_text(series: list[int], expected: str) -> None:
    assert tr.sparkline_text(series) == expected


def test_sparkline_svg_is_well_formed_self_contained_and_accessible() -> None:
    svg = tr.sparkline_svg([0, 1, 3, 2, 9], spike=True)
    root = ET.fromstring(svg)
    assert root.tag == SVG + "svg" and root.get("width") == "112" and root.get("height") == "24"
    assert root.find(SVG + "title") is not None
    assert "0, 1, 3, 2, 9" in (root.findtext(SVG + "title") or "")
    tags = {el.tag.removeprefix(SVG) for el in root.iter()}
    assert tags <= {"svg", "title", "polyline", "circle"}
    assert "circle" in tags  # the spike is marked
    lowered = svg.lower()
    for bad in ("<script", "href", "url(", "javascript:", "on", "<style", "foreignobject"):
        if bad == "on":
            assert not any(k.lower().startswith("on") for el in root.iter() for k in el.attrib)
        else:
            assert bad not in lowered
    # Points stay inside the box; the highest value touches the top padding.
    pts = [tuple(map(float, p.split(","))) for p in (root.find(SVG + "polyline").get("points") or "").split()]  # type: ignore[union-attr]
    assert len(pts) == 5
    assert all(0 <= x <= 112 and 0 <= y <= 24 for x, y in pts)
    assert min(y for _, y in pts) == pytest.approx(2.0)


@pytest.mark.parametrize("series", [[], [0], [0, 0, 0], [7]])
def test_sparkline_svg_edge_series(series: list[int]) -> None:
    root = ET.fromstring(tr.sparkline_svg(series))
    assert root.find(SVG + "circle") is None


D = date(2026, 3, 20)


def counts_fixture() -> dict[date, dict[str, int]]:
    counts: dict[date, dict[str, int]] = {}
    for i in range(30):
        day = D - timedelta(days=i)
        counts[day] = {"partnership": 4, "ipo": 1 if i else 9}
        if i == 0:
            counts[day]["lawsuit"] = 2
    return counts


def test_trend_table_rows() -> None:
    t = tr.trend_table(counts_fixture(), day=D, days=7)
    assert [r.tag for r in t.rows] == ["ipo", "partnership", "lawsuit"]  # spikes first, then today's count
    ipo = t.rows[0]
    assert ipo.counts == [1, 1, 1, 1, 1, 1, 9] and ipo.today == 9 and ipo.total == 15
    assert ipo.median == 1.0 and ipo.spike is True
    assert ipo.sparkline == tr.sparkline_text(ipo.counts)
    assert t.rows[1].spike is False and t.rows[2].spike is False  # 2 < min_count
    assert t.days[0] == D - timedelta(days=6) and t.days[-1] == D
    assert t.spikes() == ["ipo"]


def test_trend_table_json_is_plain_data() -> None:
    data = tr.trend_table(counts_fixture(), day=D, days=3).to_json()
    again = json.loads(json.dumps(data))
    assert again["day"] == "2026-03-20" and again["days"][-1] == "2026-03-20"
    assert again["tags"][0] == {"tag": "ipo", "counts": [1, 1, 9], "total": 11, "today": 9, "median": 1.0, "spike": True}


def test_trend_table_needs_history_before_calling_a_spike() -> None:
    counts = {D: {"ipo": 9}}
    assert tr.trend_table(counts, day=D, since=D).rows[0].spike is False
    assert tr.trend_table(counts, day=D, since=D - timedelta(days=7)).rows[0].spike is True
    assert tr.trend_table(counts, day=D, since=D - timedelta(days=7), min_history=8).rows[0].spike is False


def test_trend_table_missing_days_are_zero_and_tags_can_be_named() -> None:
    counts = {D - timedelta(days=2): {"azure": 3}}
    t = tr.trend_table(counts, day=D, days=4, tags=["azure", "pbc"])
    assert {r.tag: r.counts for r in t.rows} == {"azure": [0, 3, 0, 0], "pbc": [0, 0, 0, 0]}
    with pytest.raises(ValueError):
        tr.trend_table(counts, day=D, days=0)


def test_alerts_due_once_per_story_and_per_spike() -> None:
    stories = [tr.StoryScore(1, 9.0, "big"), tr.StoryScore(2, 4.0, "small"), tr.StoryScore(3, 12.0, "bigger"),
               tr.StoryScore(1, 9.5, "big, later member")]
    spikes = [("ipo", D), ("ipo", D), ("lawsuit", D)]
    due = tr.alerts_due(stories, spikes, high_score=8.0)
    assert [a.key for a in due] == ["story:3", "story:1", "spike:ipo:2026-03-20", "spike:lawsuit:2026-03-20"]
    assert due[1].score == 9.5
    sent = {a.key for a in due}
    assert tr.alerts_due(stories + [tr.StoryScore(1, 20.0)], spikes, high_score=8.0, alerted=sent) == []
    # A new day's spike on the same tag is a new alert.
    again = tr.alerts_due([], [("ipo", D + timedelta(days=1))], high_score=8.0, alerted=sent)
    assert [a.key for a in again] == ["spike:ipo:2026-03-21"]


def test_alerts_can_be_switched_off() -> None:
    stories = [tr.StoryScore(1, 99.0)]
    assert [a.kind for a in tr.alerts_due(stories, [("ipo", D)], high_score=None)] == ["spike"]
    assert [a.kind for a in tr.alerts_due(stories, [("ipo", D)], high_score=5, spike_alerts=False)] == ["story"]
    assert tr.alerts_due([tr.StoryScore(1, 4.99)], [], high_score=5) == []
