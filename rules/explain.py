"""Showing why rules matched: text with the matched spans marked.

Shared by `monitor rules test` (a text typed in) and `monitor rules explain`
(a stored article and its stored matches). Pure string work: the caller
chooses the marks (``«»`` by default, ANSI bold on a terminal).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from core.types import Match, Tagging

FIELD_ORDER = ("title", "text", "author", "url", "feed")


def merge_spans(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping spans (overlapping or touching ones joined)."""
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def highlight(text: str, spans: Iterable[tuple[int, int]], open_mark: str = "«", close_mark: str = "»") -> str:
    """The whole text with each span wrapped in the marks."""
    parts: list[str] = []
    last = 0
    for s, e in merge_spans((max(0, s), min(len(text), e)) for s, e in spans):
        parts += [text[last:s], open_mark, text[s:e], close_mark]
        last = e
    parts.append(text[last:])
    return "".join(parts)


def snippets(
    text: str,
    spans: Iterable[tuple[int, int]],
    *,
    context: int = 60,
    open_mark: str = "«",
    close_mark: str = "»",
) -> list[str]:
    """Windows of ``context`` characters around the spans, marked; ``…`` where text was cut."""
    merged = merge_spans(spans)
    windows: list[list[int]] = []
    for s, e in merged:
        lo, hi = max(0, s - context), min(len(text), e + context)
        if windows and lo <= windows[-1][1]:
            windows[-1][1] = max(windows[-1][1], hi)
        else:
            windows.append([lo, hi])
    out = []
    for lo, hi in windows:
        inner = [(max(s, lo) - lo, min(e, hi) - lo) for s, e in merged if s < hi and e > lo]
        piece = highlight(text[lo:hi], inner, open_mark, close_mark)
        piece = " ".join(piece.split())
        out.append(("…" if lo > 0 else "") + piece + ("…" if hi < len(text) else ""))
    return out


def format_tagging(
    tagging: Tagging,
    fields: Mapping[str, str | None],
    *,
    threshold: float | None = None,
    rules: Any = None,
    open_mark: str = "«",
    close_mark: str = "»",
    context: int | None = 60,
) -> str:
    """A human explanation of a Tagging: verdict, tags, each rule with its terms, marked text.

    ``rules`` may be a RuleSet to show each rule's weight and tags (rules no
    longer in it are shown by name only). ``context=None`` shows whole
    fields instead of snippets.
    """
    lines: list[str] = []
    verdict = "FLAGGED" if tagging.flagged else "not flagged"
    thr = f" (threshold {threshold:g})" if threshold is not None else ""
    lines.append(f"score {tagging.score:g}{thr}: {verdict}")
    if tagging.tags:
        lines.append(
            "tags: "
            + ", ".join(f"{t} ({tagging.tag_scores[t]:g})" if t in tagging.tag_scores else t for t in tagging.tags)
        )
    else:
        lines.append("tags: (none)")
    by_rule: dict[str, list[Match]] = {}
    for m in tagging.matches:
        by_rule.setdefault(m.rule, []).append(m)
    if by_rule:
        lines.append("rules matched:")
    for name, ms in by_rule.items():
        rule = rules.rule(name) if rules is not None and hasattr(rules, "rule") else None
        detail = f" [weight {rule.weight:g}; {', '.join(rule.tags)}]" if rule is not None else ""
        terms = sorted({f"{m.term} in {m.field}" for m in ms})
        lines.append(f"  {name}{detail}: " + "; ".join(terms))
    for fname in FIELD_ORDER:
        text = fields.get(fname) or ""
        spans = [(m.start, m.end) for m in tagging.matches if m.field == fname]
        if not spans or not text:
            continue
        if context is None:
            lines.append(f"{fname}: {highlight(text, spans, open_mark, close_mark)}")
        else:
            for piece in snippets(text, spans, context=context, open_mark=open_mark, close_mark=close_mark):
                lines.append(f"{fname}: {piece}")
    return "\n".join(lines)
