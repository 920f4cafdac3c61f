"""Read and write OPML 2.0 feed lists (pure: text in, text out).

Reading accepts nested outlines (folders) and takes every outline with an
``xmlUrl``; writing produces a flat OPML 2.0 document. No I/O here.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from core.errors import MonitorError


class OpmlError(MonitorError):
    pass


@dataclass(frozen=True)
class OpmlFeed:
    url: str
    title: str | None = None


def read_opml(data: bytes, source: str = "OPML") -> list[OpmlFeed]:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        line, col = exc.position
        raise OpmlError(f"{source}:{line}:{col}: not valid XML: {exc.msg if hasattr(exc, 'msg') else exc}") from None
    if root.tag != "opml":
        raise OpmlError(f"{source}: not an OPML file (root element is <{root.tag}>, expected <opml>)")
    body = root.find("body")
    if body is None:
        raise OpmlError(f"{source}: OPML has no <body>")
    feeds: list[OpmlFeed] = []
    seen: set[str] = set()
    for outline in body.iter("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if not url or url in seen:
            continue
        seen.add(url)
        title = outline.get("title") or outline.get("text")
        feeds.append(OpmlFeed(url, title.strip() if title else None))
    return feeds


def write_opml(feeds: list[OpmlFeed], *, title: str, now: datetime) -> str:
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(now)
    body = ET.SubElement(root, "body")
    for f in feeds:
        attrs = {"type": "rss", "text": f.title or f.url, "xmlUrl": f.url}
        if f.title:
            attrs["title"] = f.title
        ET.SubElement(body, "outline", attrs)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
