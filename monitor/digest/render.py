"""Render a selected digest as Markdown, HTML, JSON, and the index page and Atom feed.

Pure: a `Digest` (from `monitor.digest.select`) in, text out; no database,
no network, no clock. `render_all` renders a day once for every use (the
files and the delivery), so what is sent is what was written.

Every piece of text that came from a feed is untrusted. HTML output
escapes it, links only http(s) URLs, embeds no scripts, styles from
outside, images or fonts, and carries a Content-Security-Policy that
forbids them as a second line of defence. The Atom feed is built with
xml.etree, which escapes text and attributes itself.
"""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from monitor.digest.model import Digest, DigestItem
from monitor.digest.select import utc as _utc

SITE_TITLE = "Microsoft–OpenAI partnership monitor"
SNIPPET_CHARS = 240


def email_subject(d: Digest) -> str:
    n = len(d.items)
    return f"Partnership digest {d.day.isoformat()}: {n} item{'s' if n != 1 else ''}"


# ------------------------------------------------------------------ snippets


def _spans(item: DigestItem, field_name: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted((m.start, m.end) for m in item.shown_matches if m.field == field_name):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(e, out[-1][1]))
        else:
            out.append((s, e))
    return out


def _window(text: str, spans: list[tuple[int, int]], size: int = SNIPPET_CHARS) -> tuple[int, int]:
    if len(text) <= size:
        return 0, len(text)
    first = spans[0][0] if spans else 0
    start = max(0, first - size // 3)
    # Start at a word boundary so the snippet does not open mid-word.
    if start > 0:
        space = text.rfind(" ", 0, start)
        start = space + 1 if space >= 0 and start - space < 30 else start
    end = min(len(text), start + size)
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start + size // 2 else end
    return start, end


def _pieces(text: str, spans: list[tuple[int, int]], lo: int, hi: int) -> list[tuple[str, bool]]:
    """text[lo:hi] cut into (piece, highlighted) runs."""
    out: list[tuple[str, bool]] = []
    pos = lo
    for s, e in spans:
        s, e = max(s, lo), min(e, hi)
        if s >= e or s < pos:
            continue
        if s > pos:
            out.append((text[pos:s], False))
        out.append((text[s:e], True))
        pos = e
    if pos < hi:
        out.append((text[pos:hi], False))
    return out


def snippet_pieces(item: DigestItem) -> list[tuple[str, bool]]:
    text = item.snippet_text or ""
    spans = [(s, e) for s, e in _spans(item, "text") if 0 <= s < e <= len(text)]
    lo, hi = _window(text, spans)
    pieces = _pieces(text, spans, lo, hi)
    if lo > 0:
        pieces.insert(0, ("…", False))
    if hi < len(text):
        pieces.append(("…", False))
    return pieces


def title_pieces(item: DigestItem) -> list[tuple[str, bool]]:
    spans = [(s, e) for s, e in _spans(item, "title") if 0 <= s < e <= len(item.title)]
    return _pieces(item.title, spans, 0, len(item.title))


def safe_url(url: str) -> str | None:
    """The URL if it is a plain http(s) link, else None (rendered as text, never as a link)."""
    u = (url or "").strip()
    if any(ord(c) < 33 for c in u) or "\\" in u:
        return None
    try:
        parts = urlsplit(u)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return u


def local_time(d: Digest, t: datetime) -> str:
    return _utc(t).astimezone(d.zone).strftime("%H:%M")


def local_datetime(d: Digest, t: datetime) -> str:
    return _utc(t).astimezone(d.zone).strftime("%Y-%m-%d %H:%M %Z")


# ------------------------------------------------------------------ Markdown

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")


# What would start a list, heading or rule when it opens a line (a feed name
# opens the line under each item).
_MD_LINE_START = re.compile(r"^(\d+)([.)])|^([-=])")


def md_escape(text: str) -> str:
    """Feed text as inert Markdown: one line, punctuation escaped, nothing that opens a block."""
    return md_escape_start(_MD_SPECIAL.sub(r"\\\1", " ".join(text.split())))


def md_url(url: str) -> str:
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29").replace("<", "%3C").replace(">", "%3E")


def _md_pieces(pieces: list[tuple[str, bool]]) -> str:
    out = []
    for text, hot in pieces:
        if not text.strip():
            out.append(" " if text else "")
            continue
        # Whitespace is collapsed below; keep one space around a piece, and
        # outside the bold, where Markdown wants it.
        lead = " " if text[:1].isspace() else ""
        trail = " " if text[-1:].isspace() else ""
        body = _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))
        out.append(lead + (f"**{body}**" if hot else body) + trail)
    return md_escape_start(" ".join("".join(out).split()))


def md_escape_start(text: str) -> str:
    """Escape what would open a list, heading or rule at the start of a line."""
    return _MD_LINE_START.sub(lambda m: f"{m[1]}\\{m[2]}" if m[1] else f"\\{m[3]}", text)


def _md_link(text: str, url: str) -> str:
    safe = safe_url(url)
    return f"[{text}]({md_url(safe)})" if safe else text


# Why the header's per-tag counts and the section sizes differ.
_COUNTS_NOTE = "(An item counts under each of its tags but is listed once, under its strongest tag.)"
# The store knows feeds' health now, not on a past day.
_FEEDS_NOTE = "Feeds still failing when this digest was built ({when}) whose failures began before the day ended."


def render_markdown(d: Digest) -> str:
    lines = [f"# Partnership digest: {d.day.isoformat()}", ""]
    lines.append(f"Day in {d.timezone}; generated {local_datetime(d, d.generated_at)}.")
    lines.append("")
    items = d.items
    if not items:
        lines += [f"No flagged articles on {d.day.isoformat()}.", ""]
    else:
        topics = ", ".join(f"{md_escape(t)} {n}" for t, n in d.counts.items())
        lines += [f"**{len(items)} flagged.** By tag: {topics}. {_COUNTS_NOTE}", ""]
    if d.trends:
        lines += [f"## Trends (flagged per day, last {len(d.trends[0].counts)} days)", ""]
        for tr in d.trends:
            mark = " **spike**" if tr.spike else ""
            lines.append(f"- {md_escape(tr.tag)}: {' '.join(str(c) for c in tr.counts)} ({tr.counts[-1]} on {d.day.isoformat()}){mark}")
        lines.append("")
    for section in d.sections:
        lines += [f"## {md_escape(section.tag)} ({section.count_label})", ""]
        for n, item in enumerate(section.items, start=1):
            title = _md_pieces(title_pieces(item)) or "(untitled)"
            flag = " *(developing)*" if item.developing else ""
            # One paragraph with hard line breaks, the quoted snippet last: a
            # line after a quote would be read as part of the quote.
            para = [
                f"{n}. {_md_link(title, item.url)}{flag}",
                f"   {md_escape(item.feed)}, {local_time(d, item.published)}, score {item.score:g}",
            ]
            others = [t for t in item.tags if t != section.tag]
            if others:
                para.append(f"   Also tagged: {', '.join(md_escape(t) for t in others)}")
            if item.also:
                shown = ", ".join(_md_link(md_escape(s.feed), s.url) for s in item.also[:5])
                more = f" (+{len(item.also) - 5})" if len(item.also) > 5 else ""
                para.append(f"   Also covered by: {shown}{more}")
            lines.append("  \n".join(para))
            snippet = _md_pieces(snippet_pieces(item))
            if snippet:
                lines.append(f"   > {snippet}")
            lines.append("")
    if d.feeds_failing:
        lines += ["## Feeds failing", "", _FEEDS_NOTE.format(when=local_datetime(d, d.generated_at)), ""]
        for f in d.feeds_failing:
            since = f"since {local_datetime(d, f.failing_since)}, " if f.failing_since else ""
            err = md_escape(f.last_error or "error")
            lines.append(f"- {_md_link(md_escape(f.name), f.url)}: {since}{f.error_count} errors: {err}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# ------------------------------------------------------------------ HTML

_CSS = """
:root{color-scheme:light dark;--bg:#fff;--fg:#1b1b1b;--muted:#5f6368;--line:#e3e3e3;--mark:#fff2a8;--link:#0b57d0;--warn:#b3261e}
@media (prefers-color-scheme:dark){:root{--bg:#131314;--fg:#e8eaed;--muted:#9aa0a6;--line:#303134;--mark:#5c4b00;--link:#8ab4f8;--warn:#f2b8b5}}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:46rem;margin:0 auto;padding:1rem}h1{font-size:1.4rem;margin:.5rem 0}h2{font-size:1.1rem;margin:1.6rem 0 .4rem;border-bottom:1px solid var(--line);padding-bottom:.2rem}
a{color:var(--link);text-decoration:none}a:hover{text-decoration:underline}.meta,.also,.tags{color:var(--muted);font-size:.85rem}
ol{padding-left:1.3rem}li{margin:.7rem 0}.snippet{margin:.2rem 0;overflow-wrap:anywhere}mark{background:var(--mark);color:inherit;padding:0 .1em}
.warn{color:var(--warn)}.counts span{display:inline-block;margin:0 .6rem .2rem 0}.dev{font-size:.75rem;border:1px solid var(--muted);border-radius:.3rem;padding:0 .3rem;margin-left:.3rem}
.spark{vertical-align:middle}table{border-collapse:collapse}td{padding:.1rem .6rem .1rem 0}
"""


def esc(text: str) -> str:
    return html.escape(text or "", quote=True)


def _html_pieces(pieces: list[tuple[str, bool]]) -> str:
    return "".join(f"<mark>{esc(t)}</mark>" if hot else esc(t) for t, hot in pieces)


def _html_link(inner_html: str, url: str) -> str:
    safe = safe_url(url)
    if safe is None:
        return inner_html
    return f'<a href="{esc(safe)}" rel="noopener noreferrer">{inner_html}</a>'


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "img-src data:; form-action 'none'; base-uri 'none'\">"
        '<meta name="referrer" content="no-referrer">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head>\n<body><main>\n{body}\n</main></body></html>\n"
    )


def render_html(d: Digest, *, sparkline: Any = None) -> str:
    """One self-contained HTML page. `sparkline(counts, spike) -> svg` draws trends when given."""
    parts = [f"<h1>Partnership digest: {esc(d.day.isoformat())}</h1>"]
    parts.append(f'<p class="meta">Day in {esc(d.timezone)}; generated {esc(local_datetime(d, d.generated_at))}.</p>')
    items = d.items
    if not items:
        parts.append(f"<p>No flagged articles on {esc(d.day.isoformat())}.</p>")
    else:
        counts = "".join(f"<span>{esc(t)} <b>{n}</b></span>" for t, n in d.counts.items())
        parts.append(f'<p class="counts"><b>{len(items)} flagged.</b> By tag: {counts}</p>')
        parts.append(f'<p class="meta">{esc(_COUNTS_NOTE)}</p>')
    if d.trends:
        rows = []
        for tr in d.trends:
            # Without a drawing (e-mail), the numbers themselves.
            svg = sparkline(tr.counts, tr.spike) if sparkline else esc(" ".join(str(c) for c in tr.counts))
            spike = ' <b class="warn">spike</b>' if tr.spike else ""
            rows.append(f"<tr><td>{esc(tr.tag)}</td><td>{svg}</td><td>{tr.counts[-1]}{spike}</td></tr>")
        parts.append(f"<h2>Trends, last {len(d.trends[0].counts)} days</h2><table>" + "".join(rows) + "</table>")
    for section in d.sections:
        parts.append(f"<h2>{esc(section.tag)} ({esc(section.count_label)})</h2><ol>")
        for item in section.items:
            title = _html_pieces(title_pieces(item)) or "(untitled)"
            dev = '<span class="dev">developing</span>' if item.developing else ""
            li = [f"<li><b>{_html_link(title, item.url)}</b>{dev}"]
            li.append(
                f'<div class="meta">{esc(item.feed)}, {esc(local_time(d, item.published))}, score {item.score:g}</div>'
            )
            snippet = _html_pieces(snippet_pieces(item))
            if snippet:
                li.append(f'<div class="snippet">{snippet}</div>')
            others = [t for t in item.tags if t != section.tag]
            if others:
                li.append(f'<div class="tags">also tagged: {esc(", ".join(others))}</div>')
            if item.also:
                shown = ", ".join(_html_link(esc(s.feed), s.url) for s in item.also[:5])
                more = f" (+{len(item.also) - 5})" if len(item.also) > 5 else ""
                li.append(f'<div class="also">also covered by: {shown}{more}</div>')
            parts.append("".join(li) + "</li>")
        parts.append("</ol>")
    if d.feeds_failing:
        lis = []
        for f in d.feeds_failing:
            since = f"since {esc(local_datetime(d, f.failing_since))}, " if f.failing_since else ""
            lis.append(
                f"<li>{_html_link(esc(f.name), f.url)}: {since}{f.error_count} errors: "
                f'<span class="warn">{esc(f.last_error or "error")}</span></li>'
            )
        note = esc(_FEEDS_NOTE.format(when=local_datetime(d, d.generated_at)))
        parts.append(f'<h2>Feeds failing</h2><p class="meta">{note}</p><ul class="meta">' + "".join(lis) + "</ul>")
    return _page(f"Partnership digest {d.day.isoformat()}", "\n".join(parts))


# ------------------------------------------------------------------ JSON


def _iso(t: datetime) -> str:
    return _utc(t).isoformat(timespec="seconds")


def digest_dict(d: Digest) -> dict[str, Any]:
    section_of = {i.id: s.tag for s in d.sections for i in s.items}
    return {
        "date": d.day.isoformat(),
        "timezone": d.timezone,
        "generated_at": _iso(d.generated_at),
        "counts": d.counts,
        "feeds_failing": [
            {
                "name": f.name,
                "url": f.url,
                "failing_since": _iso(f.failing_since) if f.failing_since else None,
                "error_count": f.error_count,
                "last_error": f.last_error,
            }
            for f in d.feeds_failing
        ],
        "sections": [
            {"tag": s.tag, "items": [i.id for i in s.items], "total": len(s.items) if s.total is None else s.total}
            for s in d.sections
        ],
        "trends": [
            {"tag": t.tag, "days": [x.isoformat() for x in t.days], "counts": t.counts, "spike": t.spike}
            for t in d.trends
        ],
        "items": [
            {
                "id": i.id,
                "url": i.url,
                "title": i.title,
                "feed": i.feed,
                "published": _iso(i.published),
                "score": i.score,
                "tags": i.tags,
                "section": section_of[i.id],
                "snippet": "".join(t for t, _ in snippet_pieces(i)),
                "matches": [
                    {"rule": m.rule, "term": m.term, "field": m.field, "start": m.start, "end": m.end,
                     "highlighted": m in shown}
                    for shown in [set(i.shown_matches)]
                    for m in i.matches
                ],
                "story_id": i.story_id,
                "developing": i.developing,
                "also": [
                    {"feed": s.feed, "url": s.url, "title": s.title, "published": _iso(s.published)} for s in i.also
                ],
            }
            for i in d.items
        ],
    }


def render_json(d: Digest) -> str:
    return json.dumps(digest_dict(d), indent=2, ensure_ascii=False) + "\n"


# ------------------------------------------------------------------ one rendering for every use


Sparkline = Callable[[list[int], bool], str]


@dataclass(frozen=True)
class Rendered:
    """A day rendered once: the files' texts and what the delivery sends."""

    subject: str
    markdown: str
    html: str  # the page written to disk (sparklines drawn when given)
    email_html: str  # the same page for e-mail: trends as numbers, no drawings
    json: str

    def text(self, fmt: str) -> str:
        return {"md": self.markdown, "html": self.html, "json": self.json}[fmt]


def render_all(d: Digest, *, sparkline: Sparkline | None = None) -> Rendered:
    markdown = render_markdown(d)
    return Rendered(
        subject=email_subject(d),
        markdown=markdown,
        html=render_html(d, sparkline=sparkline),
        email_html=render_html(d),
        json=render_json(d),
    )


# ------------------------------------------------------------------ index and Atom feed


def _counts(data: dict[str, Any]) -> dict[str, Any]:
    counts = data.get("counts")
    return counts if isinstance(counts, dict) else {}


def _items(data: dict[str, Any]) -> list[dict[str, Any]]:
    items = data.get("items")
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def render_index(digests: list[dict[str, Any]], *, site_title: str = SITE_TITLE) -> str:
    """index.html: every digest (its JSON, with a checked `date`), newest first."""
    rows = []
    for data in digests:
        day = str(data["date"])
        counts = ", ".join(f"{esc(str(t))} {esc(str(n))}" for t, n in _counts(data).items())
        n = len(_items(data))
        rows.append(f'<li><a href="{esc(day)}.html">{esc(day)}</a>: {n} items{": " + counts if counts else ""}</li>')
    listing = "<ul>" + "".join(rows) + "</ul>" if rows else "<p>No digests yet.</p>"
    return _page(site_title, f"<h1>{esc(site_title)}</h1>\n{listing}")


# Characters XML 1.0 forbids even when escaped; one in a feed title would
# make the whole Atom feed unreadable. ElementTree escapes, but does not drop these.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
ATOM_NS = "http://www.w3.org/2005/Atom"


def _xml_text(text: str) -> str:
    return _XML_FORBIDDEN.sub("\ufffd", text)


def _updated(data: dict[str, Any], default: str) -> str:
    try:
        return _iso(datetime.fromisoformat(str(data.get("generated_at"))))
    except ValueError:
        return default


def render_atom(digests: list[dict[str, Any]], *, generated_at: datetime, site_title: str = SITE_TITLE) -> str:
    """feed.xml: an Atom entry per digest given (newest first), each summarised in escaped HTML."""
    fallback = _iso(generated_at)
    updated = max((_updated(d, fallback) for d in digests), default=fallback)
    ET.register_namespace("", ATOM_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", {k: _xml_text(v) for k, v in attrs.items()})
        if text is not None:
            el.text = _xml_text(text)
        return el

    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    sub(feed, "id", "urn:partnership-monitor:digests")
    sub(feed, "title", site_title)
    sub(feed, "updated", updated)
    sub(sub(feed, "author"), "name", "partnership-monitor")
    sub(feed, "link", rel="self", href="feed.xml")
    for data in digests:
        day = str(data["date"])
        items = _items(data)
        counts = ", ".join(f"{t} {n}" for t, n in _counts(data).items())
        tops = "".join(f"<li>{esc(str(i.get('title', '')))}</li>" for i in items[:5])
        summary = f"<p>{len(items)} flagged{': ' + esc(counts) if counts else ''}.</p>" + (f"<ul>{tops}</ul>" if tops else "")
        entry = sub(feed, "entry")
        sub(entry, "id", f"urn:partnership-monitor:digest:{day}")
        sub(entry, "title", f"Partnership digest {day}: {len(items)} items")
        sub(entry, "updated", _updated(data, fallback))
        sub(entry, "link", rel="alternate", type="text/html", href=f"{day}.html")
        sub(entry, "content", summary, type="html")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="unicode") + "\n"
