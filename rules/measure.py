"""Measuring a rule set against labeled examples: precision, recall, F1, and the misses.

A labels file has one JSON object per line: ``title`` and ``text`` (either
may be null or missing), ``relevant`` (true/false), and optional ``id``,
``url`` and ``topics`` (a list of tags). An example counts as predicted
relevant when the rule set flags it. Per-tag figures use only the examples
that carry ``topics``: an example is a true case of tag T when it is relevant
and lists T, and predicted T when it is flagged with T among its tags.
Reads the labels file it is given; nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from core.errors import MonitorError
from core.types import Tagging
from rules.engine import RuleSet


class LabelsError(MonitorError):
    """A labels file cannot be read or holds a malformed line."""


@dataclass(frozen=True)
class LabeledExample:
    relevant: bool
    title: str = ""
    text: str = ""
    id: str = ""
    url: str = ""
    topics: tuple[str, ...] | None = None
    line: int = 0

    def fields(self) -> dict[str, str]:
        return {"title": self.title, "text": self.text, "url": self.url}

    @property
    def label(self) -> str:
        return self.id or f"line {self.line}"


def read_labels(path: str | PathLike[str]) -> list[LabeledExample]:
    """Parse a labels file, reporting every bad line at once."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise LabelsError(f"{p}: cannot read labels: {exc.strerror or exc}") from None
    out: list[LabeledExample] = []
    problems: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{p}:{number}: not JSON ({exc.msg})")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{p}:{number}: expected a JSON object")
            continue
        relevant = obj.get("relevant")
        if not isinstance(relevant, bool):
            problems.append(f"{p}:{number}: 'relevant' must be true or false")
            continue
        topics = obj.get("topics")
        if topics is not None and (not isinstance(topics, list) or not all(isinstance(t, str) for t in topics)):
            problems.append(f"{p}:{number}: 'topics' must be a list of strings")
            continue
        strs = {k: obj.get(k) for k in ("title", "text", "url", "id")}
        if any(v is not None and not isinstance(v, (str, int)) for v in strs.values()):
            problems.append(f"{p}:{number}: title, text, url and id must be strings")
            continue
        out.append(
            LabeledExample(
                relevant=relevant,
                title=str(strs["title"] or ""),
                text=str(strs["text"] or ""),
                url=str(strs["url"] or ""),
                id=str(strs["id"] or ""),
                topics=tuple(topics) if topics is not None else None,
                line=number,
            )
        )
    if problems:
        raise LabelsError("; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
    if not out:
        raise LabelsError(f"{p}: no labeled examples")
    return out


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, truth: bool, predicted: bool) -> None:
        if truth and predicted:
            self.tp += 1
        elif predicted:
            self.fp += 1
        elif truth:
            self.fn += 1
        else:
            self.tn += 1

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
        }


@dataclass
class Miss:
    """A false positive or negative, with what the rules saw."""

    example: LabeledExample
    tagging: Tagging
    rule_tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def terms(self) -> dict[str, list[str]]:
        """Rule name -> the distinct terms that matched for it."""
        out: dict[str, list[str]] = {}
        for m in self.tagging.matches:
            terms = out.setdefault(m.rule, [])
            if m.term not in terms:
                terms.append(m.term)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.example.id or None,
            "line": self.example.line,
            "title": self.example.title,
            "score": self.tagging.score,
            "tags": self.tagging.tags,
            "rules": self.terms(),
        }


def tag_reason(miss: Miss, tag: str, positive: bool) -> list[str]:
    """Why an example is a false positive (``positive``) or negative of one tag.

    For a false positive: the rules that gave the tag, with their terms. For
    a false negative: "no rule matched", or which rules matched and what
    they gave instead (too low a score, other tags), so an analyst sees what
    was missing.
    """
    t = miss.tagging
    terms = miss.terms()
    if positive:
        return [f"{rule}: {', '.join(ts)}" for rule, ts in terms.items() if miss.rule_tags.get(rule, ()) and
                tag in miss.rule_tags[rule]] or [f"{rule}: {', '.join(ts)}" for rule, ts in terms.items()]
    if not terms:
        return ["no rule matched"]
    if not t.flagged:
        head = f"score {t.score:g} below the threshold"
    else:
        head = f"flagged, but as {', '.join(t.tags) or 'no tag'}, not {tag}"
    return [head] + [f"{rule}: {', '.join(ts)}" for rule, ts in terms.items()]


@dataclass
class EvalReport:
    overall: Counts = field(default_factory=Counts)
    per_tag: dict[str, Counts] = field(default_factory=dict)
    false_positives: list[Miss] = field(default_factory=list)
    false_negatives: list[Miss] = field(default_factory=list)
    # Per tag: (false positives, false negatives) among the examples with topics.
    tag_misses: dict[str, tuple[list[Miss], list[Miss]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = self.overall.to_dict()
        out["per_tag"] = {t: c.to_dict() for t, c in sorted(self.per_tag.items())}
        out["false_positives"] = [m.to_dict() for m in self.false_positives]
        out["false_negatives"] = [m.to_dict() for m in self.false_negatives]
        out["per_tag_misses"] = {
            tag: {
                "false_positives": [dict(m.to_dict(), why=tag_reason(m, tag, True)) for m in fps],
                "false_negatives": [dict(m.to_dict(), why=tag_reason(m, tag, False)) for m in fns],
            }
            for tag, (fps, fns) in sorted(self.tag_misses.items())
        }
        return out

    def format_tags(self, tags: Sequence[str]) -> str:
        """Each tag's false positives and negatives, with the rules behind them or what was missing."""
        lines: list[str] = []
        for tag in tags:
            fps, fns = self.tag_misses.get(tag, ([], []))
            c = self.per_tag.get(tag, Counts())
            lines.append("")
            lines.append(f"tag {tag}: precision {c.precision:.3f}  recall {c.recall:.3f}  "
                         f"tp {c.tp}  fp {c.fp}  fn {c.fn}")
            for title, misses, positive in (("false positives", fps, True), ("false negatives", fns, False)):
                lines.append(f"  {title}: {len(misses)}")
                for miss in misses:
                    ex = miss.example
                    lines.append(f"    [{ex.label}] {ex.title or ex.text[:70]!r} score {miss.tagging.score:g}")
                    lines += [f"        {why}" for why in tag_reason(miss, tag, positive)]
        return "\n".join(lines)

    def format_text(self) -> str:
        o = self.overall
        lines = [
            f"precision {o.precision:.3f}  recall {o.recall:.3f}  F1 {o.f1:.3f}",
            f"tp {o.tp}  fp {o.fp}  fn {o.fn}  tn {o.tn}",
        ]
        if self.per_tag:
            lines.append("")
            lines.append(f"{'tag':<14} {'prec':>6} {'recall':>6} {'F1':>6} {'tp':>4} {'fp':>4} {'fn':>4}")
            for tag, c in sorted(self.per_tag.items()):
                lines.append(
                    f"{tag:<14} {c.precision:>6.3f} {c.recall:>6.3f} {c.f1:>6.3f} {c.tp:>4} {c.fp:>4} {c.fn:>4}"
                )
        for title, misses in (("false positives", self.false_positives), ("false negatives", self.false_negatives)):
            lines.append("")
            lines.append(f"{title}: {len(misses)}")
            for miss in misses:
                ex = miss.example
                lines.append(f"  [{ex.label}] {ex.title or ex.text[:70]!r} score {miss.tagging.score:g}")
                terms = miss.terms()
                if not terms:
                    lines.append("      no rule matched")
                for rule, ts in terms.items():
                    lines.append(f"      {rule}: {', '.join(ts)}")
        return "\n".join(lines)


def evaluate_labels(ruleset: RuleSet, examples: Sequence[LabeledExample]) -> EvalReport:
    """Run the rule set over the examples and count hits and misses."""
    report = EvalReport()
    tags: set[str] = {t for ex in examples if ex.topics for t in ex.topics}
    rule_tags = {r.name: r.tags for r in ruleset.rules}
    for ex in examples:
        tagging = ruleset.evaluate(ex.fields())
        miss = Miss(ex, tagging, rule_tags)
        report.overall.add(ex.relevant, tagging.flagged)
        if tagging.flagged and not ex.relevant:
            report.false_positives.append(miss)
        elif ex.relevant and not tagging.flagged:
            report.false_negatives.append(miss)
        if ex.topics is not None:
            for tag in tags:
                truth = ex.relevant and tag in ex.topics
                predicted = tagging.flagged and tag in tagging.tags
                report.per_tag.setdefault(tag, Counts()).add(truth, predicted)
                if truth != predicted:
                    fps, fns = report.tag_misses.setdefault(tag, ([], []))
                    (fps if predicted else fns).append(miss)
    return report
