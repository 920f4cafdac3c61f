"""monitor.parse on bytes: every format from fixtures on disk, each beside its expected result.

The fixtures in tests/data/feeds/ are written for these tests (our own
sentences). Malformed ones live in tests/data/feeds/malformed/.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from monitor.parse import FeedError, ParsedFeed, RawEntry, parse_feed

FEEDS = Path(__file__).parent / "data" / "feeds"
BAD = FEEDS / "malformed"
BASE = "https://fallback.example/feed"
FIXTURES = sorted(p for p in FEEDS.iterdir() if p.is_file() and not p.name.endswith(".expected.json"))


def summary(entry: RawEntry) -> dict[str, Any]:
    return {
        "guid": entry.guid,
        "link": entry.link,
        "title": entry.title,
        "author": entry.author,
        "published": entry.published.isoformat() if entry.published else None,
        "categories": entry.categories,
    }


def parse_file(path: Path, content_type: str | None = None) -> ParsedFeed:
    return parse_feed(path.read_bytes(), BASE, content_type)


def test_every_format_has_a_fixture() -> None:
    formats = {json.loads(p.with_name(p.name.split(".")[0] + ".expected.json").read_text())["format"] for p in FIXTURES}
    assert formats == {"rss091n", "rss10", "rss20", "atom10", "json1", "json1.1"}


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fixture_parses_to_its_expected_result(path: Path) -> None:
    expected = json.loads(path.with_name(path.name.split(".")[0] + ".expected.json").read_text())
    parsed = parse_file(path)
    assert (parsed.title, parsed.format, parsed.warning) == (expected["title"], expected["format"], None)
    assert [summary(e) for e in parsed.entries] == expected["entries"]
    for e in parsed.entries:
        assert e.published is None or e.published.utcoffset() is not None


@pytest.mark.parametrize("content_type", [None, "application/rss+xml", "text/xml", "text/html; charset=utf-8", "application/octet-stream"])
def test_content_type_does_not_change_the_result(content_type: str | None) -> None:
    # Servers label feeds every which way; the body decides.
    assert parse_file(FEEDS / "rss20.rss", content_type) == parse_file(FEEDS / "rss20.rss")


def test_rss20_keeps_content_encoded_and_description_as_html() -> None:
    first = parse_file(FEEDS / "rss20.rss").entries[0]
    assert first.summary_html == "<p>A filing spells out the split until the end of the decade.</p>"
    assert "adds a review clause" in first.content_html and "<script>" in first.content_html  # kept raw; clean drops it


def test_atom_xhtml_content_and_html_summary() -> None:
    first = parse_file(FEEDS / "atom10.atom").entries[0]
    assert first.summary_html == "<p>Exclusivity narrows; a right of first refusal stays.</p>"
    assert "The rest of the text reads much like last year's." in first.content_html


def test_atom_relative_links_resolve_against_xml_base_not_the_fetch_url() -> None:
    parsed = parse_file(FEEDS / "atom10.atom")
    assert parsed.link == "https://notes.example/blog/"
    assert [e.link for e in parsed.entries] == [
        "https://notes.example/blog/2026/azure-terms",
        "https://notes.example/archive/2026/11/prices",  # the entry's own xml:base wins
    ]


def test_json_feed_content_text_is_escaped_into_html() -> None:
    second = parse_file(FEEDS / "jsonfeed10.json").entries[1]
    assert second.content_html == "Microsoft put its assistant into two more products this week. Notes on each follow."
    tricky = b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "1", "content_text": "a < b & c"}]}'
    assert parse_feed(tricky, BASE).entries[0].content_html == "a &lt; b &amp; c"


@pytest.mark.parametrize(
    "version",
    ["https://jsonfeed.org/version/1", "http://jsonfeed.org/version/1", "https://jsonfeed.org/version/1.1", "https://jsonfeed.org/version/1.1/"],
)
def test_json_feed_versions_accepted(version: str) -> None:
    body = json.dumps({"version": version, "title": "T", "items": [{"id": "x", "title": "OpenAI note"}]}).encode()
    assert [e.title for e in parse_feed(body, BASE).entries] == ["OpenAI note"]


@pytest.mark.parametrize(
    "version", ["https://jsonfeed.org/version/2", "https://example.org/jsonfeed.org/version/1", "1.1", ""]
)
def test_json_with_another_version_is_not_a_json_feed(version: str) -> None:
    body = json.dumps({"version": version, "items": [{"id": "x"}]}).encode()
    with pytest.raises(FeedError, match="not a JSON Feed"):
        parse_feed(body, BASE)


def test_json_feed_items_that_are_not_objects_are_skipped_with_a_warning() -> None:
    body = b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "1", "title": "Azure"}, "junk", 3]}'
    parsed = parse_feed(body, BASE)
    assert [e.guid for e in parsed.entries] == ["1"]
    assert parsed.warning == "malformed JSON Feed: 2 items are not objects"


# --- malformed input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "titles", "warning"),
    [
        ("unescaped-amp.rss", ["Microsoft books more GPU capacity for OpenAI", "Storage prices hold steady"], "not well-formed"),
        ("undeclared-entity.rss", ["OpenAI opens a Zürich office", "Copilot reaches the café till"], "undefined entity"),
        ("latin1-no-declaration.rss", ["Microsoft et OpenAI : un accord révisé", "Les centres de données consomment plus"], "parsed as windows-1252"),
        ("latin1-declared-utf8.rss", ["Microsoft et OpenAI : un accord révisé", "Les centres de données consomment plus"], "parsed as windows-1252"),
        ("truncated.rss", ["OpenAI restructures its for-profit arm", "Microsoft reports cloud growth"], "no element found"),
    ],
)
def test_malformed_feed_that_yields_entries_parses_with_a_warning(name: str, titles: list[str], warning: str) -> None:
    parsed = parse_file(BAD / name)
    assert [e.title for e in parsed.entries] == titles
    assert parsed.warning is not None and parsed.warning.startswith("malformed feed: ") and warning in parsed.warning
    assert "\n" not in parsed.warning


def test_unescaped_amp_keeps_the_whole_link() -> None:
    first = parse_file(BAD / "unescaped-amp.rss").entries[0]
    assert first.link == "https://contracts.example/story?id=881&section=cloud"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("html-page.html", "not a feed: the URL returned an HTML page"),
        ("not-jsonfeed.json", "not a feed: JSON without a jsonfeed.org version (not a JSON Feed)"),
        ("truncated.json", "not a feed: invalid JSON (Unterminated string"),
    ],
)
def test_not_a_feed_raises_feed_error(name: str, message: str) -> None:
    with pytest.raises(FeedError) as err:
        parse_file(BAD / name)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body><p>Moved</p></body></html>",
        b"\xef\xbb\xbf\n\n<!DOCTYPE html>\n<html><head><title>x</title></head></html>",
        b'<?xml version="1.0"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" "x.dtd">\n<html xmlns="http://www.w3.org/1999/xhtml"/>',
        b"<!-- served by cache -->\n<HTML><HEAD></HEAD></HTML>",
        b"<head><title>Document Moved</title></head><body>Object moved</body>",
        # A page that quotes Atom markup (escaped, as a page shows it) is still a page.
        b'<html><body><pre>&lt;feed xmlns="http://www.w3.org/2005/Atom"&gt;&lt;entry/&gt;</pre></body></html>',
    ],
)
def test_html_pages_are_recognised(body: bytes) -> None:
    with pytest.raises(FeedError, match="HTML page"):
        parse_feed(body, BASE, "text/html")
    with pytest.raises(FeedError, match="HTML page"):
        parse_feed(body, BASE, None)  # by the body alone


@pytest.mark.parametrize("content_type", ["text/html", None])
def test_atom_feed_element_inside_a_page_is_read(content_type: str | None) -> None:
    # Issue 9: some blog engines serve their Atom <feed> inside an XHTML <body>;
    # feedparser alone reads it, so this is a feed, not "an HTML page".
    body = (
        b'<html xmlns="http://www.w3.org/1999/xhtml"><body><feed xmlns="http://www.w3.org/2005/Atom">'
        b"<title>Blog</title><entry><id>urn:1</id><title>Hello</title>"
        b'<link href="https://blog.example/1"/></entry></feed></body></html>'
    )
    feed = parse_feed(body, BASE, content_type)
    assert feed.format == "atom10" and feed.title == "Blog"
    assert [(e.guid, e.title) for e in feed.entries] == [("urn:1", "Hello")]


@pytest.mark.parametrize("body", [b"", b"   \n\t ", b"\xef\xbb\xbf"])
def test_empty_body_raises(body: bytes) -> None:
    with pytest.raises(FeedError, match="^not a feed: the response body is empty$"):
        parse_feed(body, BASE)


@pytest.mark.parametrize("body", [b"just some words", b"<?xml version='1.0'?><note><to>x</to></note>"])
def test_other_documents_are_not_feeds(body: bytes) -> None:
    with pytest.raises(FeedError, match="^not a feed: "):
        parse_feed(body, BASE)


def test_valid_feed_with_zero_items_is_no_error() -> None:
    parsed = parse_file(BAD / "zero-items.rss")
    assert (parsed.title, parsed.entries, parsed.warning) == ("Quiet Feed", [], None)


def test_truncated_before_any_item_is_an_error_with_the_reason() -> None:
    body = (FEEDS / "rss20.rss").read_bytes().split(b"<item>")[0]
    with pytest.raises(FeedError, match="^malformed feed with no entries: .*no element found"):
        parse_feed(body, BASE)


def test_leading_whitespace_before_the_xml_declaration() -> None:
    body = (FEEDS / "rss20.rss").read_bytes()
    parsed = parse_feed(b"\n\r\n  \t" + body, BASE)
    assert parsed == parse_feed(body, BASE)
    assert parsed.warning is None


def test_byte_order_mark_then_whitespace_before_json() -> None:
    body = (FEEDS / "jsonfeed11.json").read_bytes()
    assert parse_feed(b"\xef\xbb\xbf\n" + body, BASE) == parse_feed(body, BASE)


@pytest.mark.parametrize("name", ["rss20.rss", "atom10.atom", "jsonfeed11.json"])
def test_gzip_compressed_body(name: str) -> None:
    body = (FEEDS / name).read_bytes()
    assert parse_feed(gzip.compress(body), BASE) == parse_feed(body, BASE)


def test_corrupt_gzip_body_raises() -> None:
    with pytest.raises(FeedError, match="^not a feed: corrupt gzip data"):
        parse_feed(b"\x1f\x8b\x08\x00" + b"not deflate at all", BASE)


def test_gzip_body_inflating_past_the_limit_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    import monitor.parse

    monkeypatch.setattr(monitor.parse, "MAX_INFLATED", 1000)
    with pytest.raises(FeedError, match="inflates beyond"):
        parse_feed(gzip.compress(b" " * 5000), BASE)


def test_utf8_without_declaration_or_content_type_is_read_as_utf8() -> None:
    # feedparser alone would read this as ISO-8859-1 (RFC 3023 for a missing Content-Type).
    body = '<rss version="2.0"><channel><title>Zürich</title><item><title>Café</title><link>https://x.example/1</link></item></channel></rss>'
    for content_type in (None, "text/xml", "application/octet-stream"):
        parsed = parse_feed(body.encode("utf-8"), BASE, content_type)
        assert (parsed.title, parsed.entries[0].title, parsed.warning) == ("Zürich", "Café", None), content_type


def test_http_charset_wins_over_a_missing_declaration() -> None:
    body = '<rss version="2.0"><channel><title>Новости</title><item><title>Облако</title></item></channel></rss>'
    parsed = parse_feed(body.encode("windows-1251"), BASE, "application/rss+xml; charset=windows-1251")
    assert (parsed.title, parsed.entries[0].title, parsed.warning) == ("Новости", "Облако", None)


def test_xml_served_as_json_is_still_parsed_as_xml() -> None:
    parsed = parse_feed((FEEDS / "rss20.rss").read_bytes(), BASE, "application/json")
    assert len(parsed.entries) == 3


def test_empty_nested_items_are_not_entries() -> None:
    parsed = parse_file(BAD / "nested-item.rss")
    assert [e.title for e in parsed.entries] == ["Azure price cut", "OpenAI hires a new CFO"]


@pytest.mark.parametrize(
    ("author", "name"),
    [
        ("news@desk.example (Leo Brandt)", "Leo Brandt"),
        ("Leo Brandt", "Leo Brandt"),
        ("news@desk.example", "news@desk.example"),
        ("Leo (the editor) Brandt", "Leo (the editor) Brandt"),  # brackets without an address: kept
    ],
)
def test_rss_author_email_with_name(author: str, name: str) -> None:
    body = f'<rss version="2.0"><channel><title>t</title><item><title>x</title><author>{author}</author></item></channel></rss>'
    assert parse_feed(body.encode(), BASE).entries[0].author == name


def test_atom_entry_inherits_the_feed_author_but_rss_items_do_not_inherit_the_editor() -> None:
    assert parse_file(FEEDS / "atom10.atom").entries[1].author == "Notes Staff"
    body = b'<rss version="2.0"><channel><title>t</title><managingEditor>ed@x.example (Ed)</managingEditor><item><title>x</title></item></channel></rss>'
    assert parse_feed(body, BASE).entries[0].author is None


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"id": "a", "authors": 5, "author": {"name": "Old Style"}}, ("a", "Old Style", [], None)),
        ({"id": "a", "authors": "Ana"}, ("a", "Feed Staff", [], None)),
        ({"id": "a", "authors": [{"name": "  "}, {"name": 3}, "Ana"]}, ("a", "Feed Staff", [], None)),
        ({"id": 7, "tags": "OpenAI"}, ("7", "Feed Staff", [], None)),
        ({"id": {"x": 1}, "tags": ["Azure", 3, None]}, (None, "Feed Staff", ["Azure"], None)),
        ({"id": True, "date_published": "yesterday"}, (None, "Feed Staff", [], None)),
        ({"id": " ", "date_published": "2026-11-20T10:00:00"}, (None, "Feed Staff", [], "2026-11-20T10:00:00+00:00")),
        ({"id": "b", "date_published": "2026-11-20T10:00:00+05:30"}, ("b", "Feed Staff", [], "2026-11-20T04:30:00+00:00")),
    ],
)
def test_json_feed_fields_of_the_wrong_shape_do_not_break_the_feed(item: dict[str, Any], expected: tuple[Any, ...]) -> None:
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "authors": [{"name": "Feed Staff"}], "items": [item]})
    e = parse_feed(body.encode(), BASE).entries[0]
    assert (e.guid, e.author, e.categories, e.published.isoformat() if e.published else None) == expected
