"""A fast path for plain RSS 2.0 and Atom 1.0 bodies: the entries feedparser would give, or None.

feedparser is a pure-Python SAX handler stack (issue 12: 5.2 s of worker CPU
per 10,000 entries); lxml's C parser reads the same plain feed in a fraction
of that. This module reads only what it can read exactly as feedparser does
(tests/test_parse_fast.py compares both on every corpus feed) and answers
None for anything else, which `monitor.parse.parse_feed` then gives to
feedparser as before: a body that is not well-formed XML, an encoding other
than UTF-8 (declared, or named by the server), RSS other than 2.0, RDF,
xml:base, an element outside the short lists below (Media RSS, Dublin Core
dates, iTunes, Atom xhtml content, ...), a date in a form other than plain
RFC 822 or ISO 8601, characters feedparser remaps (C1 controls), several
authors. Pure: bytes in, entries out.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from lxml import etree

try:
    from feedparser.urls import _urljoin
except ImportError:  # a feedparser without it: every body goes to feedparser, as before
    _urljoin = None  # type: ignore[assignment]

# feedparser.urls._urljoin: the very join feedparser applies to links and ids (pinned by the tests).
_ATOM = "{http://www.w3.org/2005/Atom}"
_CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"
_DC_CREATOR = "{http://purl.org/dc/elements/1.1/}creator"
# Item children that feed no RawEntry field, or only the ones read here.
_RSS_ITEM = frozenset({
    "title", "link", "guid", "pubDate", "description", "author", "category", "comments", "enclosure",
    _CONTENT, _DC_CREATOR,
    "{http://wellformedweb.org/CommentAPI/}commentRss", "{http://purl.org/rss/1.0/modules/slash/}comments",
})
_RSS_CHANNEL = frozenset({
    "title", "link", "description", "language", "copyright", "managingEditor", "webMaster", "lastBuildDate",
    "pubDate", "generator", "docs", "ttl", "category", "image", "item", f"{_ATOM}link",
    "{http://purl.org/rss/1.0/modules/syndication/}updatePeriod",
    "{http://purl.org/rss/1.0/modules/syndication/}updateFrequency",
})
_ATOM_ENTRY = frozenset(f"{_ATOM}{n}" for n in (
    "id", "title", "link", "published", "updated", "author", "summary", "content", "category", "rights",
))
_ATOM_FEED = frozenset(f"{_ATOM}{n}" for n in (
    "id", "title", "subtitle", "link", "updated", "author", "generator", "icon", "logo", "rights", "category", "entry",
))
_C1 = re.compile(r"[\x80-\x9f]")
_OTHER_RELS = frozenset({"self", "hub", "next", "previous", "first", "last"})
_UNREF = re.compile("&([A-Za-z0-9_]+);")
_XML_DECL = re.compile(rb"^<\?xml[^>]*\bencoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_RFC822 = re.compile(
    r"^(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),\s*)?(\d{1,2})\s+(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\s+"
    r"(\d{4})\s+(\d{2}):(\d{2})(?::(\d{2}))?\s+(?:([+-])(\d{2})(\d{2})|GMT|UTC|UT|Z)$"
)
_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$")
_PARSER_OPTIONS = {"resolve_entities": False, "no_network": True, "load_dtd": False, "huge_tree": False}


T = TypeVar("T")


class _Reject(Exception):
    """Not a body this path reads exactly as feedparser does."""


def parse_plain_feed(body: bytes, base_url: str, content_type: str | None) -> tuple[str, str | None, str, list[dict[str, Any]]] | None:
    """(title, link, format, entries) of a plain RSS 2.0 / Atom body, or None.

    Each entry is a dict of RawEntry's fields as feedparser's entry holds them
    (``author`` the entry's own, as written; ``feed_author`` the Atom feed's).
    """
    if _urljoin is None:
        return None
    try:
        return _parse(body, base_url, content_type)
    except (_Reject, etree.LxmlError, ValueError):
        return None


def _parse(body: bytes, base_url: str, content_type: str | None) -> tuple[str, str | None, str, list[dict[str, Any]]]:
    _check_encoding(body, content_type)
    if b"<!DOCTYPE" in body[:2048] or b"<!ENTITY" in body[:4096]:
        raise _Reject("doctype")
    root = etree.fromstring(body, etree.XMLParser(**_PARSER_OPTIONS))
    if root.tag == "rss" and root.get("version") == "2.0" and not root.nsmap.get(None):
        return _rss(root, base_url)
    if root.tag == f"{_ATOM}feed":
        return _atom(root, base_url)
    raise _Reject("not RSS 2.0 or Atom")


def _check_encoding(body: bytes, content_type: str | None) -> None:
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip("\"'").lower() not in ("utf-8", "utf8"):
            raise _Reject("server charset")
    if body[:3] == b"\xef\xbb\xbf":
        body = body[3:]
    if body[:2] in (b"\xff\xfe", b"\xfe\xff") or body[:1] != b"<":
        raise _Reject("byte order or leading bytes")
    m = _XML_DECL.match(body[:200])
    if m and m.group(1).lower() not in (b"utf-8", b"utf8"):
        raise _Reject("declared encoding")


def _text(el: Any) -> str:
    if len(el):
        raise _Reject("markup inside a text element")
    t = (el.text or "").strip()
    if not t.isascii():
        # feedparser's repair of UTF-8 read as Latin-1 (mixin.pop), applied to every UTF-8 element text.
        try:
            t = t.encode("iso-8859-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
        if _C1.search(t):
            raise _Reject("C1 characters")  # feedparser maps them to Windows-1252's; not done here
    return t


def _no_xml_base(el: Any) -> None:
    if "{http://www.w3.org/XML/1998/namespace}base" in el.attrib:
        raise _Reject("xml:base")


def _one(items: list[T]) -> T | None:
    if len(items) > 1:
        raise _Reject("repeated element")
    return items[0] if items else None


def _rss(root: Any, base: str) -> tuple[str, str | None, str, list[dict[str, Any]]]:
    channels = [c for c in root if c.tag == "channel"]
    if len(channels) != 1 or any(isinstance(c.tag, str) and c.tag != "channel" for c in root):
        raise _Reject("channel")
    channel = channels[0]
    fields: dict[str, list[Any]] = {}
    for el in channel.iter():
        _no_xml_base(el)
    for el in channel:
        if not isinstance(el.tag, str):
            continue  # a comment or processing instruction
        if el.tag not in _RSS_CHANNEL:
            raise _Reject(f"channel element {el.tag}")
        fields.setdefault(el.tag, []).append(el)
    if any(e.get("rel", "alternate") not in _OTHER_RELS for e in fields.get(f"{_ATOM}link", [])):
        raise _Reject("an atom:link that may be the channel's link")
    title = _one([_text(e) for e in fields.get("title", [])]) or ""
    link = _one([_text(e) for e in fields.get("link", [])])
    entries = [_rss_item(item, base) for item in fields.get("item", [])]
    return title, (_UNREF.sub(r"&\g<1>", _urljoin(base, link)) if link else None), "rss20", entries


def _rss_item(item: Any, base: str) -> dict[str, Any]:
    got: dict[str, list[Any]] = {}
    for el in item:
        if not isinstance(el.tag, str):
            continue
        if el.tag not in _RSS_ITEM:
            raise _Reject(f"item element {el.tag}")
        got.setdefault(el.tag, []).append(el)
    guid_el = _one(got.get("guid", []))
    guid = _text(guid_el) if guid_el is not None else None
    permalink = guid_el is not None and guid_el.get("isPermaLink", "true").lower() != "false"
    if guid and permalink:
        guid = _urljoin(base, guid)  # feedparser resolves a permalink guid, not the others
    link = _one([_text(e) for e in got.get("link", [])])
    if link:
        # feedparser's repair of query strings read as entity references (mixin.pop).
        link = _UNREF.sub(r"&\g<1>", _urljoin(base, link).replace("&amp;", "&"))
    elif guid and permalink:
        link = guid
    else:
        link = None
    summary = _one([_text(e) for e in got.get("description", [])]) or ""
    content = _one([_text(e) for e in got.get(_CONTENT, [])]) or ""
    authors = [_text(e) for e in got.get("author", []) + got.get(_DC_CREATOR, [])]
    if len(authors) > 1:
        raise _Reject("several authors")
    return {
        "guid": guid,
        "link": link or None,
        "title": _one([_text(e) for e in got.get("title", [])]) or "",
        "author": authors[0] if authors else None,
        "feed_author": None,
        "published": _rfc822(_one([_text(e) for e in got.get("pubDate", [])])),
        "categories": [t for t in (_text(e) for e in got.get("category", [])) if t],
        "summary_html": "" if summary == content or (not summary and content) else summary,
        "content_html": content,
    }


def _atom(root: Any, base: str) -> tuple[str, str | None, str, list[dict[str, Any]]]:
    for el in root.iter():
        _no_xml_base(el)
    fields: dict[str, list[Any]] = {}
    for el in root:
        if not isinstance(el.tag, str):
            continue
        if el.tag not in _ATOM_FEED:
            raise _Reject(f"feed element {el.tag}")
        fields.setdefault(el.tag, []).append(el)
    title = _one([_atom_text(e) for e in fields.get(f"{_ATOM}title", [])]) or ""
    feed_author = _atom_author(fields.get(f"{_ATOM}author", []))
    entries = [_atom_entry(e, base, feed_author) for e in fields.get(f"{_ATOM}entry", [])]
    return title, _atom_link(fields.get(f"{_ATOM}link", []), base, required=True), "atom10", entries


def _atom_text(el: Any) -> str:
    if el.get("type", "text") not in ("text", "html") or el.get("src") is not None:
        raise _Reject("atom text type")
    return _text(el)


def _atom_link(links: list[Any], base: str, *, required: bool = False) -> str | None:
    alternate = [e.get("href") for e in links if e.get("rel", "alternate") == "alternate"]
    if required and not (alternate and alternate[0] and alternate[0].strip()):
        raise _Reject("no alternate link (feedparser falls back to the id)")
    if len(alternate) > 1 or any(e.get("rel", "alternate") == "alternate" and e.get("type") not in (None, "text/html")
                                 for e in links):
        raise _Reject("links")
    return _urljoin(base, alternate[0].strip()) if alternate and alternate[0] else None


def _atom_author(authors: list[Any]) -> str | None:
    if len(authors) > 1:
        raise _Reject("several authors")
    if not authors:
        return None
    children = {c.tag: c for c in authors[0]}
    if set(children) - {f"{_ATOM}name", f"{_ATOM}uri"} or len(children) != len(authors[0]):
        raise _Reject("author parts")
    name = children.get(f"{_ATOM}name")
    return (_text(name) or None) if name is not None else None


def _atom_entry(entry: Any, base: str, feed_author: str | None) -> dict[str, Any]:
    got: dict[str, list[Any]] = {}
    for el in entry:
        if not isinstance(el.tag, str):
            continue
        if el.tag not in _ATOM_ENTRY:
            raise _Reject(f"entry element {el.tag}")
        got.setdefault(el.tag, []).append(el)
    guid = _one([_text(e) for e in got.get(f"{_ATOM}id", [])])
    summary = _one([_atom_text(e) for e in got.get(f"{_ATOM}summary", [])]) or ""
    content = _one([_atom_text(e) for e in got.get(f"{_ATOM}content", [])]) or ""
    published = _iso(_one([_text(e) for e in got.get(f"{_ATOM}published", [])]))
    updated = _iso(_one([_text(e) for e in got.get(f"{_ATOM}updated", [])]))
    return {
        "guid": guid or None,  # feedparser resolves no Atom id
        "link": _atom_link(got.get(f"{_ATOM}link", []), base, required=True),
        "title": _one([_atom_text(e) for e in got.get(f"{_ATOM}title", [])]) or "",
        "author": _atom_author(got.get(f"{_ATOM}author", [])),
        "feed_author": feed_author,
        "published": published or updated,
        "categories": [t for t in (e.get("term") or e.get("label") or "" for e in got.get(f"{_ATOM}category", [])) if t],
        "summary_html": "" if summary == content or (not summary and content) else summary,
        "content_html": content,
    }


def _rfc822(value: str | None) -> datetime | None:
    if not value:
        return None
    m = _RFC822.match(value)
    if m is None:
        raise _Reject("date form")
    day, month, year, hh, mm, ss, sign, oh, om = m.groups()
    t = datetime(int(year), _MONTHS[month], int(day), int(hh), int(mm), int(ss or 0), tzinfo=timezone.utc)
    if sign:
        offset = timedelta(hours=int(oh), minutes=int(om))
        t = t - offset if sign == "+" else t + offset
    return t


def _iso(value: str | None) -> datetime | None:
    if not value:
        return None
    if not _ISO.match(value):
        raise _Reject("date form")
    t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return t.astimezone(timezone.utc).replace(microsecond=0)
