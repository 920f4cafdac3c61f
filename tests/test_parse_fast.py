"""The lxml fast path (monitor.parse_fast) gives exactly feedparser's entries, or steps aside.

For every corpus feed (../shared/corpus/feeds, when present) and for feeds
written here, `parse_feed` with the fast path must equal `parse_feed(...,
fast=False)` (feedparser alone): the feed's title, link, format and warning,
and every entry's guid, link, title, author, date, categories, summary and
content; or both raise the same FeedError. The hand-written feeds also pin
which bodies the fast path takes and which it leaves to feedparser.
"""

from __future__ import annotations

import random
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from monitor.parse import FeedError, ParsedFeed, parse_feed
from monitor.parse_fast import parse_plain_feed

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "feeds"
BASE = "https://site.example/blog/feed"


def both(body: bytes, content_type: str | None = None) -> tuple[object, object]:
    def run(fast: bool) -> object:
        try:
            p: ParsedFeed = parse_feed(body, BASE, content_type, fast=fast)
        except FeedError as exc:
            return ("FeedError", str(exc))
        return (p.title, p.link, p.format, p.warning, [asdict(e) for e in p.entries])

    return run(True), run(False)


def rss(items: str, channel: str = "", decl: str = '<?xml version="1.0" encoding="utf-8"?>') -> bytes:
    return (
        f'{decl}<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom"><channel>'
        f"<title> Site &amp; Co </title><link>https://site.example/</link><description>d</description>{channel}"
        f"{items}</channel></rss>"
    ).encode()


def atom(entries: str, feed: str = '<link href="https://site.example/"/>') -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title type='html'>Site &lt;b&gt;x&lt;/b&gt;</title><id>urn:site</id><updated>2026-11-01T00:00:00Z</updated>"
        f"{feed}{entries}</feed>"
    ).encode()


TAKEN = {
    "rss plain": rss(
        "<item><title> A &amp; B &lt;b&gt;x&lt;/b&gt; </title><link>https://site.example/a?x=1&amp;y=2</link>"
        "<guid isPermaLink='false'>a-1</guid><pubDate>Mon, 02 Dec 2024 10:00:00 +0100</pubDate>"
        "<description> short </description><content:encoded><![CDATA[ <p>long</p> ]]></content:encoded>"
        "<category> c1 </category><category/><author>joe@site.example (Joe Doe)</author><comments>x</comments></item>"
    ),
    "rss relative link, permalink guid": rss(
        "<item><title>B</title><link>/b/post</link><guid>b-2</guid><pubDate>3 Dec 2024 10:00 GMT</pubDate></item>"
        "<item><title>C</title><guid>https://site.example/c</guid><dc:creator>Ann</dc:creator></item>"
        "<item><title>D</title><guid isPermaLink='false'>d-4</guid><description>same</description>"
        "<content:encoded>same</content:encoded></item>"
    ),
    "rss content only, link with an entity-like query": rss(
        "<item><title>E</title><link>https://site.example/e?a=1&amp;amp;b=2&amp;copy;c</link>"
        "<content:encoded>&lt;p&gt;only content&lt;/p&gt;</content:encoded></item><!-- a comment -->"
    ),
    "rss mojibake": rss(
        "<item><title>K\u00c3\u00a4ltewelle</title><link>https://site.example/k</link></item>", decl=""
    ),
    "rss self link": rss("<item><title>F</title><link>https://site.example/f</link></item>",
                         channel='<atom:link rel="self" href="https://site.example/feed"/>'),
    "atom": atom(
        "<entry><id>tag:site,2026:1</id><title>One</title><link href='/one'/><link rel='replies' href='/c'/>"
        "<published>2026-11-02T10:00:00.123+02:00</published><updated>2026-11-03T00:00:00Z</updated>"
        "<author><name>Ann</name></author><summary type='html'>&lt;p&gt;s&lt;/p&gt;</summary>"
        "<content type='html'>&lt;p&gt;c&lt;/p&gt;</content><category term='t1'/><category label='L'/></entry>"
        "<entry><id>tag:site,2026:2</id><title>Two</title><link rel='alternate' type='text/html' href='https://o.example/2'/>"
        "<updated>2026-11-04T00:00:00Z</updated><content>plain &amp; text</content></entry>",
        feed='<link href="https://site.example/"/><link rel="self" href="/feed"/><author><name>Site</name></author>',
    ),
}
LEFT = {
    "rss 0.91": rss("<item><title>A</title></item>").replace(b'version="2.0"', b'version="0.91"'),
    "latin-1 declared": rss("<item><title>caf\u00e9</title></item>", decl='<?xml version="1.0" encoding="iso-8859-1"?>'),
    "not well-formed": rss("<item><title>A & B</title></item>"),
    "media rss": rss("<item><title>A</title><media:title xmlns:media='http://search.yahoo.com/mrss/'>M</media:title></item>"),
    "dc:date": rss("<item><title>A</title><dc:date>2026-11-01T00:00:00Z</dc:date></item>"),
    "odd date": rss("<item><title>A</title><pubDate>2026-11-01</pubDate></item>"),
    "impossible date": rss("<item><title>A</title><pubDate>31 Feb 2024 10:00:00 GMT</pubDate></item>"),
    "C1 character": rss("<item><title>a\u0085b</title></item>"),
    "markup in a title": rss("<item><title>a <b>b</b></title></item>"),
    "xml:base": rss("<item xml:base='https://other.example/'><title>A</title><link>x</link></item>"),
    "two authors": rss("<item><title>A</title><author>a@x (A)</author><dc:creator>B</dc:creator></item>"),
    "alternate atom:link in rss": rss("<item><title>A</title></item>", channel='<atom:link href="https://o.example/"/>'),
    "atom xhtml": atom("<entry><id>1</id><title>T</title><link href='/x'/><content type='xhtml'>"
                       "<div xmlns='http://www.w3.org/1999/xhtml'>x</div></content></entry>"),
    "atom entry without link": atom("<entry><id>https://site.example/1</id><title>T</title></entry>"),
    "atom feed without link": atom("<entry><id>1</id><title>T</title><link href='/x'/></entry>", feed=""),
    "atom author email": atom("<entry><id>1</id><title>T</title><link href='/x'/>"
                              "<author><name>A</name><email>a@x</email></author></entry>"),
    "doctype": b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY e "x">]>' + rss("<item><title>&e;</title></item>", decl=""),
}


@pytest.mark.parametrize("name", sorted(TAKEN))
def test_fast_path_takes_and_agrees(name: str) -> None:
    assert parse_plain_feed(TAKEN[name], BASE, None) is not None
    fast, slow = both(TAKEN[name])
    assert fast == slow


@pytest.mark.parametrize("name", sorted(LEFT))
def test_fast_path_leaves_to_feedparser(name: str) -> None:
    assert parse_plain_feed(LEFT[name], BASE, None) is None
    fast, slow = both(LEFT[name])
    assert fast == slow


def test_server_charset_other_than_utf8_goes_to_feedparser() -> None:
    body = TAKEN["rss plain"]
    assert parse_plain_feed(body, BASE, "text/xml; charset=iso-8859-1") is None
    assert parse_plain_feed(body, BASE, "text/xml; charset=UTF-8") is not None
    for ctype in ("text/xml; charset=iso-8859-1", "text/xml; charset=UTF-8"):
        fast, slow = both(body, ctype)
        assert fast == slow


def test_bench_feeds_take_the_fast_path() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    try:
        import feedserver
    finally:
        sys.path.pop(0)
    rng = random.Random(4)
    for n in range(5):
        body = feedserver.make_feed(n, 20, rng)
        assert parse_plain_feed(body, BASE, None) is not None
        fast, slow = both(body)
        assert fast == slow


@pytest.mark.skipif(not (CORPUS / "MANIFEST.tsv").is_file(), reason="feed corpus not found beside the project")
def test_every_corpus_feed_agrees_with_feedparser() -> None:
    taken = 0
    for line in (CORPUS / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        name = line.split("\t", 1)[0]
        body = (CORPUS / name).read_bytes()
        fast, slow = both(body)
        assert fast == slow, name
        taken += parse_plain_feed(body.strip(), BASE, None) is not None
    assert taken >= 20  # 24 of the 224 corpus feeds when this was written (the rest use other elements)
