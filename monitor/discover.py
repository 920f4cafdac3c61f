"""Find the feed behind a site's address, as `monitor feeds add https://site.example/` needs.

People paste the site, not the feed. When the URL answers with a feed it is
used as it is; when it answers with an HTML page, the page's
`<link rel="alternate" type="application/rss+xml|atom+xml|feed+json">`
links are tried in page order (relative hrefs resolved against the page),
then the usual paths at the site's root (/feed, /rss.xml, /atom.xml,
/feed.xml, /index.xml). A candidate counts only when it parses as a feed
(monitor.parse, the poller's own parser), so a path that answers with the
site's 404 page is never chosen.

Fetching goes through monitor.fetch.Fetcher (its limits, its refusal of
non-HTTP redirects); nothing here touches the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from core.errors import MonitorError
from monitor.fetch import Fetcher, FetchResult
from monitor.parse import parse_feed

FEED_TYPES = {
    "application/rss+xml": "RSS",
    "application/atom+xml": "Atom",
    "application/feed+json": "JSON Feed",
    "application/rdf+xml": "RSS 1.0",
}
COMMON_PATHS = ("/feed", "/rss.xml", "/atom.xml", "/feed.xml", "/index.xml")


class DiscoveryError(MonitorError):
    """No feed at or behind the URL (one line: what was tried)."""


class CheckFailed(MonitorError):
    """The URL itself could not be fetched, so nothing could be checked."""


@dataclass(frozen=True)
class Discovered:
    url: str
    how: str  # how it was found, for the user: "the URL is a feed", "<link rel=\"alternate\"> on the page", ...
    title: str | None = None


class _LinkFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str, str | None]] = []  # (href, type, title)
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "base" and a.get("href") and self.base is None:
            self.base = a["href"].strip()
        if tag != "link":
            return
        rels = a.get("rel", "").lower().split()
        kind = a.get("type", "").split(";")[0].strip().lower()
        if "alternate" in rels and kind in FEED_TYPES and a.get("href", "").strip():
            self.links.append((a["href"].strip(), kind, a.get("title") or None))


def feed_links(html: str, page_url: str) -> list[tuple[str, str, str | None]]:
    """The page's alternate feed links as (absolute URL, kind, title), in page order, each once (pure)."""
    finder = _LinkFinder()
    try:
        finder.feed(html)
        finder.close()
    except AssertionError:  # html.parser gives up on some broken markup; keep what it found
        pass
    base = urljoin(page_url, finder.base) if finder.base else page_url
    out, seen = [], set()
    for href, kind, title in finder.links:
        url = urljoin(base, href)
        if urlsplit(url).scheme in ("http", "https") and url not in seen:
            seen.add(url)
            out.append((url, FEED_TYPES[kind], title))
    return out


def _as_feed(result: FetchResult) -> str | None:
    """The feed's title when the fetch answered with a feed, else None."""
    if result.error is not None or not result.body:
        return None
    try:
        parsed = parse_feed(result.body, result.final_url, result.content_type)
    except MonitorError:
        return None
    return parsed.title or ""


def _is_html(result: FetchResult) -> bool:
    ctype = (result.content_type or "").split(";")[0].strip().lower()
    if ctype in ("text/html", "application/xhtml+xml"):
        return True
    head = (result.body or b"")[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def _decode(result: FetchResult) -> str:
    body = result.body or b""
    ctype = result.content_type or ""
    if "charset=" in ctype.lower():
        charset = ctype.lower().split("charset=")[1].split(";")[0].strip().strip("\"'")
        try:
            return body.decode(charset, errors="replace")
        except LookupError:
            pass
    return body.decode("utf-8", errors="replace")


def discover_feed(fetcher: Fetcher, url: str, *, now: datetime) -> Discovered:
    """The feed at `url` or the one its page points to. Raises CheckFailed or DiscoveryError."""
    first = fetcher.fetch(url, now=now)
    if first.error is not None:
        raise CheckFailed(f"{url}: {first.error}")
    title = _as_feed(first)
    if title is not None:
        return Discovered(first.permanent_url or url, "the URL is a feed", title or None)
    if not _is_html(first):
        kind = (first.content_type or "unknown type").split(";")[0]
        raise DiscoveryError(f"{url} is neither a feed nor an HTML page ({kind})")
    tried: list[str] = []
    for link, kind, link_title in feed_links(_decode(first), first.final_url):
        result = fetcher.fetch(link, now=now)
        title = _as_feed(result)
        if title is not None:
            return Discovered(
                result.permanent_url or link, f'the page\'s <link rel="alternate"> ({kind})', title or link_title
            )
        tried.append(f"{link} ({result.error or 'not a feed'})")
    for path in COMMON_PATHS:
        candidate = urljoin(first.final_url, path)
        result = fetcher.fetch(candidate, now=now)
        title = _as_feed(result)
        if title is not None:
            return Discovered(result.permanent_url or candidate, f"the usual path {path}", title or None)
    links = f"its feed links failed: {'; '.join(tried[:3])}" if tried else 'it has no <link rel="alternate"> to a feed'
    raise DiscoveryError(
        f"{url} is an HTML page, not a feed, and no feed was found: {links}, and none of "
        f"{', '.join(COMMON_PATHS)} answered with a feed. Give the feed's own URL."
    )
