"""Parse a fetched feed body: RSS 0.9x/1.0/2.0 and Atom (feedparser), JSON Feed 1.x (ours).

Plain RSS 2.0 and Atom bodies are read by monitor.parse_fast (lxml) when it
can give exactly what feedparser would, and by feedparser otherwise.

Takes bytes and the URL they came from, never a URL to fetch: only
monitor.fetch touches the network. feedparser runs with its HTML sanitizer
and relative-URI resolution off: we extract text ourselves (monitor.clean)
and sanitize at render time, and those two passes are most of its cost.

A malformed feed that still yields entries parses with a `warning`; a body
that is not a feed, or is broken and yields nothing, raises FeedError with
the reason.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from typing import Any

import feedparser
import feedparser.encodings

from core.errors import MonitorError
from monitor.parse_fast import parse_plain_feed

# feedparser guesses a body's encoding with chardet - before trying UTF-8 -
# whenever chardet happens to be importable (readability-lxml, the full-text
# extractor, brings it in). Parsing must not change with what else is
# installed, and chardet is pure Python (seconds on a large misdeclared
# feed): keep feedparser's own fallbacks (utf-8, windows-1252, iso-8859-2).
feedparser.encodings.lazy_chardet_encoding = None

# A double-gzipped body (Content-Encoding undone once) is decompressed at
# most to this size: the fetch cap already bounds what we were sent.
MAX_INFLATED = 50_000_000
# JSON Feed 1.0 documents in the wild give the version URL with http: as
# often as with https:; both name the same spec.
_JSONFEED_VERSION = re.compile(r"^https?://jsonfeed\.org/version/1(\.\d+)?/?$")
_BOM = b"\xef\xbb\xbf"
# An HTML page is known by its first element, after any XML declaration,
# comments and doctype: a page that quotes feed markup (a blog post about
# Atom) is still a page, not a feed, unless a real feed element is nested in it.
_HTML_START = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:(?:<!--.*?-->|<!doctype\s+html[^>]*>)\s*)*<(?:html|head|body)\b", re.I | re.S
)


# A feed element nested in a page (an Atom <feed> inside an XHTML <body>, as
# some blog engines serve it) is read on its own, as feedparser would; quoted
# feed markup in a page is escaped (&lt;feed) and does not match.
_EMBEDDED_FEED = (
    (re.compile(rb"<feed\b[^>]*\bxmlns\s*=\s*[\"']http://www\.w3\.org/2005/Atom[\"']", re.I), b"</feed>"),
    (re.compile(rb"<rss\b[^>]*\bversion\s*=", re.I), b"</rss>"),
)


def _embedded_feed(page: bytes) -> bytes | None:
    for start_tag, end_tag in _EMBEDDED_FEED:
        start = start_tag.search(page)
        if start is None:
            continue
        end = page.lower().rfind(end_tag)
        if end > start.start():
            return page[start.start() : end + len(end_tag)]
    return None


class FeedError(MonitorError):
    """The body is not a feed, or is so broken that it yields no entries."""


@dataclass
class RawEntry:
    guid: str | None
    link: str | None
    title: str
    author: str | None
    published: datetime | None  # aware UTC; from published, else updated
    categories: list[str] = field(default_factory=list)
    summary_html: str = ""
    content_html: str = ""


@dataclass
class ParsedFeed:
    title: str
    link: str | None
    format: str  # rss20, atom10, rss10, rss091u, json1.1, ...
    entries: list[RawEntry]
    warning: str | None = None


_SURROGATE_REF = re.compile((
    rb"&#(?:[xX]0*[dD][89a-fA-F][0-9a-fA-F]{2}"
    rb"|0*(?:5529[6-9]|553[0-9]{2}|55[4-9][0-9]{2}|56[0-9]{3}|57[0-2][0-9]{2}|573[0-3][0-9]|5734[0-3]));"
))


def parse_feed(body: bytes, base_url: str, content_type: str | None = None, *, fast: bool = True) -> ParsedFeed:
    """Parse a feed body. Raises FeedError when it is not a usable feed.

    ``fast=False`` skips the lxml fast path (monitor.parse_fast): feedparser reads every body.
    """
    if body[:2] == b"\x1f\x8b":
        body = _gunzip(body)
    stripped = body.lstrip()
    if stripped.startswith(_BOM):
        stripped = stripped[len(_BOM):].lstrip()
    if not stripped:
        raise FeedError("not a feed: the response body is empty")
    ctype = (content_type or "").split(";")[0].strip().lower()
    # The body decides, not the Content-Type: servers label feeds text/html,
    # application/octet-stream or application/json more often than not.
    if stripped[:1] in (b"{", b"["):
        return _parse_json_feed(stripped)
    if _HTML_START.match(stripped[:8192]):
        embedded = _embedded_feed(stripped)
        if embedded is None:
            raise FeedError("not a feed: the URL returned an HTML page")
        stripped = body = embedded
    if stripped[:5] == b"<?xml":
        # Whitespace before the XML declaration makes expat give up and
        # feedparser fall back to its slower, looser parser.
        body = stripped
    # A character reference to a surrogate (`&#xD800;`) makes feedparser's
    # loose parser raise UnicodeEncodeError and lose the whole feed.
    if b"&#" in body:
        body = _SURROGATE_REF.sub(b"&#xFFFD;", body)
    plain = parse_plain_feed(body, base_url, content_type) if fast else None
    if plain is not None:
        title, link, fmt, found = plain
        entries = []
        for e in found:
            if e["title"] or e["link"] or e["guid"] or e["content_html"] or e["summary_html"]:
                e["author"] = _author_name(e["author"]) or e.pop("feed_author")
                e.pop("feed_author", None)
                entries.append(RawEntry(**e))
        if entries:
            return ParsedFeed(title=_clean_title(title), link=link, format=fmt, entries=entries)
    return _parse_with_feedparser(body, base_url, content_type, ctype)


def _parse_with_feedparser(body: bytes, base_url: str, content_type: str | None, ctype: str) -> ParsedFeed:
    d = feedparser.parse(
        body, sanitize_html=False, resolve_relative_uris=False, response_headers=_headers(base_url, content_type)
    )
    feed = d.get("feed", {})
    # Atom entries without an author have the feed's (RFC 4287, 4.2.1); an
    # RSS channel's editor is not the author of its items.
    feed_author = (feed.get("author") or None) if str(d.get("version", "")).startswith("atom") else None
    entries = [_entry(e, feed_author) for e in d.entries if _has_content(e)]
    reason = _bozo_reason(d)
    if not entries:
        if not d.get("version"):
            if ctype in ("text/html", "application/xhtml+xml") and not d.entries:
                raise FeedError("not a feed: the URL returned an HTML page")
            raise FeedError(f"not a feed: {reason or 'no RSS, Atom or JSON Feed document found'}")
        if reason:
            raise FeedError(f"malformed feed with no entries: {reason}")
    return ParsedFeed(
        title=_clean_title(feed.get("title", "")),
        link=feed.get("link") or None,
        format=d.get("version") or "unknown",
        entries=entries,
        warning=f"malformed feed: {reason}" if reason else None,
    )


def _headers(base_url: str, content_type: str | None) -> dict[str, str]:
    # feedparser follows RFC 3023 to the letter: text/xml without a charset
    # means US-ASCII, and no Content-Type at all means ISO-8859-1 (a UTF-8
    # feed without an encoding declaration turns to mojibake). What works
    # is what browsers do: the HTTP charset if the server named one, else
    # the document's own declaration or BOM, else UTF-8. An XML media type
    # with only the server's charset gives feedparser exactly that.
    charset = ""
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip("\"'"):
            charset = "; charset=" + value.strip().strip("\"'")
    return {"content-location": base_url, "content-type": "application/xml" + charset}


def _has_content(e: Any) -> bool:
    # An illegally nested <item/> becomes an entry with nothing in it; it is
    # not an article (and all such would share one fallback guid).
    return any(e.get(k) for k in ("title", "link", "id", "summary", "content"))


def _bozo_reason(d: Any) -> str | None:
    if not d.get("bozo"):
        return None
    exc = d.get("bozo_exception")
    text = str(exc) if exc is not None else "unknown problem"
    return " ".join(text.split())[:300]


def _gunzip(body: bytes) -> bytes:
    try:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = inflater.decompress(body, MAX_INFLATED)
        if inflater.unconsumed_tail:
            raise FeedError(f"not a feed: gzip-compressed body inflates beyond {MAX_INFLATED // 1_000_000} MB")
        return out
    except zlib.error as exc:
        raise FeedError(f"not a feed: corrupt gzip data ({exc})") from None


def _utc(t: Any) -> datetime | None:
    if not t:
        return None
    try:
        return datetime(t[0], t[1], t[2], t[3], t[4], t[5], tzinfo=timezone.utc)
    except (TypeError, ValueError):
        return None


def _clean_title(text: str) -> str:
    return " ".join((text or "").split())


# RSS 2.0's <author> is an e-mail address, often with the name in brackets.
_EMAIL_AND_NAME = re.compile(r"^\s*[^\s@()]+@[^\s@()]+\s*\(\s*([^()]+?)\s*\)\s*$")


def _author_name(author: str | None) -> str | None:
    if not author:
        return None
    m = _EMAIL_AND_NAME.match(author)
    return m.group(1) if m else author


def _entry(e: Any, feed_author: str | None = None) -> RawEntry:
    content = ""
    for c in e.get("content") or []:
        value = c.get("value") or ""
        if len(value) > len(content):
            content = value
    summary = e.get("summary") or ""
    if summary and summary == content:
        summary = ""
    author = _author_name(e.get("author"))
    if not author and e.get("authors"):
        author = ", ".join(a.get("name", "") for a in e["authors"] if a.get("name")) or None
    return RawEntry(
        guid=(e.get("id") or None),
        link=(e.get("link") or None),
        title=e.get("title") or "",
        author=author or feed_author,
        # dict.get: feedparser's own get() answers a missing updated_parsed
        # with published_parsed and a DeprecationWarning.
        published=_utc(dict.get(e, "published_parsed")) or _utc(dict.get(e, "updated_parsed")),
        categories=[t.get("term") or t.get("label") or "" for t in e.get("tags") or [] if t.get("term") or t.get("label")],
        summary_html=summary,
        content_html=content,
    )


def _parse_json_feed(body: bytes) -> ParsedFeed:
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FeedError(f"not a feed: invalid JSON ({exc})") from None
    if not isinstance(doc, dict) or not _JSONFEED_VERSION.match(str(doc.get("version", "")).strip()):
        raise FeedError("not a feed: JSON without a jsonfeed.org version (not a JSON Feed)")
    version = str(doc["version"]).strip().rstrip("/").rsplit("/", 1)[-1]
    items = doc.get("items")
    if not isinstance(items, list):
        raise FeedError("malformed JSON Feed: 'items' is missing or not a list")
    entries = []
    skipped = 0
    for item in items:
        if not isinstance(item, dict):
            skipped += 1
            continue
        entries.append(_json_entry(item, doc))
    return ParsedFeed(
        title=_clean_title(str(doc.get("title") or "")),
        link=doc.get("home_page_url") if isinstance(doc.get("home_page_url"), str) else None,
        format=f"json{version}",
        entries=entries,
        warning=f"malformed JSON Feed: {skipped} items are not objects" if skipped else None,
    )


def _json_date(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def _json_author_names(holder: dict[str, Any]) -> list[str]:
    # 1.1 has "authors" (a list), 1.0 had "author" (an object); a publisher
    # may get either shape wrong, which must not break the feed.
    authors = holder.get("authors")
    if not isinstance(authors, list):
        authors = [holder.get("author")]
    return [a["name"].strip() for a in authors if isinstance(a, dict) and isinstance(a.get("name"), str) and a["name"].strip()]


def _json_authors(item: dict[str, Any], doc: dict[str, Any]) -> str | None:
    return ", ".join(_json_author_names(item) or _json_author_names(doc)) or None


def _json_entry(item: dict[str, Any], doc: dict[str, Any]) -> RawEntry:
    def text(key: str) -> str:
        v = item.get(key)
        return v if isinstance(v, str) else ""

    content = text("content_html")
    if not content and text("content_text"):
        content = escape(text("content_text"))
    guid = item.get("id")
    tags = item.get("tags")
    if not isinstance(tags, list):
        tags = []
    return RawEntry(
        guid=str(guid).strip() or None if isinstance(guid, (str, int)) and not isinstance(guid, bool) else None,
        link=text("url") or text("external_url") or None,
        title=text("title"),
        author=_json_authors(item, doc),
        published=_json_date(item.get("date_published")) or _json_date(item.get("date_modified")),
        categories=[t for t in tags if isinstance(t, str)],
        summary_html=text("summary"),
        content_html=content,
    )
