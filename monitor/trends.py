"""Trends: per-tag daily counts, spikes, sparklines, and which alerts are due.

Pure: counts and days come in as arguments; no database, no clock. The SVG
sparkline is built from numbers only, so no feed text can ever reach it.

A spike: today's count is at least `min_count` and at least `factor` times
the median of the `window` days before it. With a zero median, `min_count`
alone decides (a tag nobody mentioned for two weeks that gets three articles
today is news).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

WINDOW = 14
FACTOR = 2.0
MIN_COUNT = 3
BLOCKS = "▁▂▃▄▅▆▇█"


def trailing_median(series: Sequence[int], *, window: int = WINDOW) -> float:
    """Median of the `window` values before the last one (0.0 when there are none)."""
    history = list(series[:-1])[-window:] if window > 0 else []
    return float(statistics.median(history)) if history else 0.0


def spike(
    series: Sequence[int], *, window: int = WINDOW, factor: float = FACTOR, min_count: int = MIN_COUNT
) -> bool:
    """Whether today (the last value) is well above the trailing median, with a minimum count."""
    if not series:
        return False
    today = series[-1]
    return today >= min_count and today >= factor * trailing_median(series, window=window)


def sparkline_text(series: Sequence[int]) -> str:
    """One block character per value, scaled to the largest (all zeros: the lowest block)."""
    top = max(series, default=0)
    if top <= 0:
        return BLOCKS[0] * len(series)
    return "".join(BLOCKS[round(max(v, 0) / top * (len(BLOCKS) - 1))] for v in series)


def sparkline_svg(series: Sequence[int], *, width: int = 112, height: int = 24, spike: bool = False) -> str:
    """A tiny inline SVG line of the counts; the last point is ringed when it is a spike.

    Self-contained: no script, no style sheet, no links; its `<title>` lists
    the numbers for screen readers.
    """
    values = [max(0, int(v)) for v in series]
    label = "daily counts, oldest first: " + ", ".join(str(v) for v in values)
    if spike:
        label += " (spike today)"
    pad = 2.0
    top = max(values, default=0) or 1
    n = len(values)
    step = (width - 2 * pad) / (n - 1) if n > 1 else 0.0

    def xy(i: int, v: int) -> tuple[float, float]:
        return pad + i * step, height - pad - (height - 2 * pad) * v / top

    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in enumerate(values)))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" class="spark{" spike" if spike else ""}">',
        f"<title>{label}</title>",
    ]
    if n:
        parts.append(f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{points}"/>')
        x, y = xy(n - 1, values[-1])
        if spike:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#c0392b"/>')
    parts.append("</svg>")
    return "".join(parts)


# --- the trends table ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrendRow:
    tag: str
    counts: list[int]  # one per day, oldest first, ending on the table's day
    total: int
    today: int
    median: float  # trailing median of the `window` days before today
    spike: bool

    @property
    def sparkline(self) -> str:
        return sparkline_text(self.counts)


@dataclass(frozen=True)
class TrendTable:
    day: date
    days: list[date]
    rows: list[TrendRow] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "days": [d.isoformat() for d in self.days],
            "tags": [asdict(r) for r in self.rows],
        }

    def spikes(self) -> list[str]:
        return [r.tag for r in self.rows if r.spike]


def series_for(counts: Mapping[date, Mapping[str, int]], tag: str, days: Iterable[date]) -> list[int]:
    """The tag's count on each day (0 for a day without any)."""
    return [int(counts.get(d, {}).get(tag, 0)) for d in days]


def trend_table(
    counts: Mapping[date, Mapping[str, int]],
    *,
    day: date,
    days: int = 14,
    window: int = WINDOW,
    factor: float = FACTOR,
    min_count: int = MIN_COUNT,
    since: date | None = None,
    min_history: int = 7,
    tags: Iterable[str] | None = None,
) -> TrendTable:
    """Rows for `monitor trends` and the digests: per tag, the last `days` counts ending on `day`.

    The spike test looks at the `window` days before `day` whatever `days`
    shows. Days before `since` (when monitoring began) are not history, and
    with fewer than `min_history` days of it nothing is a spike: a tag is not
    "rising" because the database was empty last week. Rows are sorted
    by spike first, then today's count, then total, then tag.
    """
    if days < 1:
        raise ValueError("a trends table shows at least one day")
    shown = [day - timedelta(days=i) for i in range(days - 1, -1, -1)]
    first = day - timedelta(days=window)
    if since is not None and since > first:
        first = since
    history_days = [first + timedelta(days=i) for i in range((day - first).days + 1)] if first <= day else [day]
    names = set(tags) if tags is not None else {t for d in shown + history_days for t in counts.get(d, {})}
    rows = []
    for tag in names:
        s = series_for(counts, tag, shown)
        hist = series_for(counts, tag, history_days)
        rows.append(
            TrendRow(
                tag=tag,
                counts=s,
                total=sum(s),
                today=s[-1],
                median=trailing_median(hist, window=window),
                spike=len(hist) - 1 >= min_history and spike(hist, window=window, factor=factor, min_count=min_count),
            )
        )
    rows.sort(key=lambda r: (not r.spike, -r.today, -r.total, r.tag))
    return TrendTable(day=day, days=shown, rows=rows)


# --- alerts --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoryScore:
    """A story's best score, as the alert decision sees it."""

    story_id: int
    score: float
    title: str = ""


@dataclass(frozen=True)
class Alert:
    kind: str  # story | spike
    key: str  # story:<id> | spike:<tag>:<day>: the store's alerts.key, unique, so at most once each
    story_id: int | None = None
    tag: str | None = None
    day: date | None = None
    score: float | None = None
    title: str = ""


def story_alert_key(story_id: int) -> str:
    return f"story:{story_id}"


def spike_alert_key(tag: str, day: date) -> str:
    return f"spike:{tag}:{day.isoformat()}"


def alerts_due(
    stories: Iterable[StoryScore],
    spikes: Iterable[tuple[str, date]],
    *,
    high_score: float | None,
    alerted: Iterable[str] = (),
    spike_alerts: bool = True,
) -> list[Alert]:
    """Alerts to send now: stories whose best score reaches `high_score`, and spikes.

    `alerted` holds the keys already sent (the store's ``alerts.key``): a
    story alerts at most once however many articles join it later, a spike
    at most once per tag and day. `high_score=None` turns story alerts off.
    Highest scores first, then spikes by tag.
    """
    sent = set(alerted)
    out: list[Alert] = []
    if high_score is not None:
        best: dict[int, StoryScore] = {}
        for s in stories:
            if s.score >= high_score and (s.story_id not in best or s.score > best[s.story_id].score):
                best[s.story_id] = s
        for s in sorted(best.values(), key=lambda s: (-s.score, s.story_id)):
            key = story_alert_key(s.story_id)
            if key not in sent:
                sent.add(key)
                out.append(Alert("story", key, story_id=s.story_id, score=s.score, title=s.title))
    if spike_alerts:
        for tag, day in sorted(set(spikes)):
            key = spike_alert_key(tag, day)
            if key not in sent:
                sent.add(key)
                out.append(Alert("spike", key, tag=tag, day=day))
    return out
