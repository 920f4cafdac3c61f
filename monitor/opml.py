"""Read and write OPML 2.0 feed lists (pure: text in, text out).

Reading takes every outline with an ``xmlUrl``; the outlines it sits in
(folders, as feed readers export them) become its category, nested ones
joined with "/" ("Tech/AI"). Writing puts each feed back in its folder,
feeds without a category at the top level. No I/O here.
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
    category: str | None = None  # the folder path, "Tech/AI"


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

    # Iterative, not recursive: a file nested thousands deep must not end in a RecursionError.
    stack: list[tuple[ET.Element, tuple[str, ...]]] = [(o, ()) for o in reversed(body.findall("outline"))]
    while stack:
        outline, folders = stack.pop()
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        title = (outline.get("title") or outline.get("text") or "").strip() or None
        if url and url not in seen:
            seen.add(url)
            feeds.append(OpmlFeed(url, title, "/".join(folders) or None))
        inner = folders if url else folders + ((title,) if title else ())
        stack.extend((child, inner) for child in reversed(outline.findall("outline")))
    return feeds


def write_opml(feeds: list[OpmlFeed], *, title: str, now: datetime) -> str:
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(now)
    body = ET.SubElement(root, "body")
    folders: dict[tuple[str, ...], ET.Element] = {(): body}

    def folder(path: tuple[str, ...]) -> ET.Element:
        if path not in folders:
            folders[path] = ET.SubElement(folder(path[:-1]), "outline", {"text": path[-1], "title": path[-1]})
        return folders[path]

    for f in feeds:
        path = tuple(p.strip() for p in (f.category or "").split("/") if p.strip())
        attrs = {"type": "rss", "text": f.title or f.url, "xmlUrl": f.url}
        if f.title:
            attrs["title"] = f.title
        ET.SubElement(folder(path), "outline", attrs)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
