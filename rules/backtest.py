"""Comparing two taggings of the same articles: what a rule edit would change.

Pure: the caller (the `monitor rules backtest` command) loads the stored
taggings and re-evaluates the articles; this module only compares. An
article present on one side only is compared against an empty Tagging.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from core.types import Tagging


@dataclass
class BacktestReport:
    """The difference between a ``before`` and an ``after`` tagging of the same articles.

    Tag counts count articles carrying a tag (``*_flagged`` only flagged ones,
    which is what digests show). ``tags_added``/``tags_removed`` hold only the
    articles whose tags changed.
    """

    articles: int = 0
    newly_flagged: list[int] = field(default_factory=list)
    no_longer_flagged: list[int] = field(default_factory=list)
    tag_counts_before: dict[str, int] = field(default_factory=dict)
    tag_counts_after: dict[str, int] = field(default_factory=dict)
    flagged_tag_counts_before: dict[str, int] = field(default_factory=dict)
    flagged_tag_counts_after: dict[str, int] = field(default_factory=dict)
    tags_added: dict[int, list[str]] = field(default_factory=dict)
    tags_removed: dict[int, list[str]] = field(default_factory=dict)
    score_changed: list[int] = field(default_factory=list)
    flagged_before: int = 0
    flagged_after: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.newly_flagged or self.no_longer_flagged or self.tags_added or self.tags_removed)

    def tag_rows(self) -> list[tuple[str, int, int, int, int]]:
        """(tag, tagged before, tagged after, flagged before, flagged after) for every tag seen."""
        tags = sorted(set(self.tag_counts_before) | set(self.tag_counts_after))
        return [
            (
                t,
                self.tag_counts_before.get(t, 0),
                self.tag_counts_after.get(t, 0),
                self.flagged_tag_counts_before.get(t, 0),
                self.flagged_tag_counts_after.get(t, 0),
            )
            for t in tags
        ]

    def to_dict(self) -> dict[str, object]:
        return {
            "articles": self.articles,
            "flagged_before": self.flagged_before,
            "flagged_after": self.flagged_after,
            "newly_flagged": self.newly_flagged,
            "no_longer_flagged": self.no_longer_flagged,
            "per_tag": {
                t: {"before": b, "after": a, "flagged_before": fb, "flagged_after": fa}
                for t, b, a, fb, fa in self.tag_rows()
            },
            "tags_added": {str(k): v for k, v in self.tags_added.items()},
            "tags_removed": {str(k): v for k, v in self.tags_removed.items()},
        }


def compare(before: Mapping[int, Tagging], after: Mapping[int, Tagging]) -> BacktestReport:
    """What changes for each article when ``before`` is replaced by ``after``."""
    report = BacktestReport()
    empty = Tagging()
    tb: Counter[str] = Counter()
    ta: Counter[str] = Counter()
    fb: Counter[str] = Counter()
    fa: Counter[str] = Counter()
    for article_id in sorted(set(before) | set(after)):
        old = before.get(article_id, empty)
        new = after.get(article_id, empty)
        report.articles += 1
        tb.update(set(old.tags))
        ta.update(set(new.tags))
        if old.flagged:
            report.flagged_before += 1
            fb.update(set(old.tags))
        if new.flagged:
            report.flagged_after += 1
            fa.update(set(new.tags))
        if new.flagged and not old.flagged:
            report.newly_flagged.append(article_id)
        elif old.flagged and not new.flagged:
            report.no_longer_flagged.append(article_id)
        added = sorted(set(new.tags) - set(old.tags))
        removed = sorted(set(old.tags) - set(new.tags))
        if added:
            report.tags_added[article_id] = added
        if removed:
            report.tags_removed[article_id] = removed
        if abs(new.score - old.score) > 1e-9:
            report.score_changed.append(article_id)
    report.tag_counts_before = dict(sorted(tb.items()))
    report.tag_counts_after = dict(sorted(ta.items()))
    report.flagged_tag_counts_before = dict(sorted(fb.items()))
    report.flagged_tag_counts_after = dict(sorted(fa.items()))
    return report
