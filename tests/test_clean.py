"""monitor.clean: HTML to text, canonical URLs and entries to Articles, table-driven with near misses."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest

from monitor.clean import canonical_url, html_to_text, to_article
from monitor.parse import RawEntry

FETCHED = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
BASE = "https://desk.example/feed/"


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("", ""),
        # plain text: the fast path still decodes entities and collapses whitespace
        ("Microsoft and OpenAI", "Microsoft and OpenAI"),
        ("  OpenAI\n\t signs  ", "OpenAI signs"),
        ("AT&T &amp; Azure", "AT&T & Azure"),
        ("&lt;p&gt; is a tag", "<p> is a tag"),
        ("caf&eacute;&#8217;s &#x201C;menu&#x201D;", "caf\u00e9\u2019s \u201cmenu\u201d"),
        ("x < y and y > z", "x < y and y > z"),
        # dropped: scripts, styles, templates, comments, embeds
        ("<p>OpenAI</p><script>track('x');</script>", "OpenAI"),
        ("<style>p { color: red }</style><p>Azure</p>", "Azure"),
        ("<template><p>hidden</p></template>shown", "shown"),
        ("<!-- editor note -->shown", "shown"),
        ("<noscript>enable JS</noscript><p>text</p>", "text"),
        ('<iframe src="https://video.example/1">fallback</iframe>after', "after"),
        ("<div><svg><text>chart label</text></svg>caption</div>", "caption"),
        # block elements separate words; inline ones do not
        ("<p>one</p><p>two</p>", "one two"),
        ("line<br>break<br/>again", "line break again"),
        ("<ul><li>Azure</li><li>OpenAI</li></ul>", "Azure OpenAI"),
        ("<h2>Deal</h2>text", "Deal text"),
        ("<table><tr><td>a</td><td>b</td></tr></table>", "a b"),
        ("<blockquote>quote</blockquote>said", "quote said"),
        ("<b>Open</b><i>AI</i>", "OpenAI"),  # near miss: inline tags join
        ('<a href="/x">Micro</a>soft', "Microsoft"),
        # entities inside markup, non-breaking spaces, nested escaping
        ("<p>caf&eacute;&nbsp;&nbsp;bar</p>", "caf\u00e9 bar"),
        ("<p>a&amp;amp;b</p>", "a&amp;b"),  # decoded once, as a browser shows it
        ("<pre>a\n\n   b</pre>", "a b"),
        ("<p>unclosed <b>bold", "unclosed bold"),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        # tracking parameters go, the rest stays in order
        ("https://desk.example/a?utm_source=rss&utm_medium=feed", "https://desk.example/a"),
        ("https://desk.example/a?id=5&utm_campaign=x&page=2", "https://desk.example/a?id=5&page=2"),
        ("https://desk.example/a?UTM_Source=x&b=1", "https://desk.example/a?b=1"),
        ("https://desk.example/a?fbclid=abc&gclid=def&msclkid=g", "https://desk.example/a"),
        ("https://desk.example/a?utm%5Fsource=x&b=1", "https://desk.example/a?b=1"),
        ("https://desk.example/a?z=1&a=2&m=3", "https://desk.example/a?z=1&a=2&m=3"),
        ("https://desk.example/a?id=1&id=2", "https://desk.example/a?id=1&id=2"),
        # fragment dropped; scheme and host lower-cased; default port dropped
        ("https://desk.example/a#comments", "https://desk.example/a"),
        ("HTTPS://Desk.EXAMPLE/a", "https://desk.example/a"),
        ("http://desk.example:80/a", "http://desk.example/a"),
        ("https://desk.example:443/a", "https://desk.example/a"),
        ("https://desk.example./a", "https://desk.example/a"),
        ("https://desk.example", "https://desk.example/"),
        ("  https://desk.example/a  ", "https://desk.example/a"),
        # near misses that must NOT change
        ("https://desk.example/a?utm=1", "https://desk.example/a?utm=1"),  # no underscore: not the utm_* convention
        ("https://desk.example/a?id=42", "https://desk.example/a?id=42"),
        ("https://desk.example/A/Story", "https://desk.example/A/Story"),  # path case is the server's
        ("https://desk.example/a?Q=Azure", "https://desk.example/a?Q=Azure"),  # so is query case
        ("http://desk.example:8080/a", "http://desk.example:8080/a"),
        ("https://desk.example:80/a", "https://desk.example:80/a"),  # 80 is not https's default
        ("https://desk.example/a?flag&b=1", "https://desk.example/a?flag&b=1"),
        ("https://desk.example/s?q=open%20ai+deal", "https://desk.example/s?q=open%20ai+deal"),
        ("https://desk.example/a?source=rss", "https://desk.example/a?source=rss"),
        ("https://desk.example/a?reference=1", "https://desk.example/a?reference=1"),
        ("http://[::1]:8080/a?x", "http://[::1]:8080/a?x"),
        ("https://user@desk.example/a", "https://user@desk.example/a"),
        # not http(s): left alone
        ("mailto:tips@desk.example", "mailto:tips@desk.example"),
        ("urn:uuid:1234", "urn:uuid:1234"),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


def test_canonical_url_is_idempotent() -> None:
    for url in ("https://Desk.example:443/a?b=1&utm_x=2#f", "http://[::1]/?flag", "https://x.example/s?q=a%20b"):
        once = canonical_url(url)
        assert canonical_url(once) == once


def raw(**kw: object) -> RawEntry:
    fields: dict[str, object] = {
        "guid": "desk-1",
        "link": "https://desk.example/2026/11/24/deal/?utm_source=rss",
        "title": "Microsoft &amp; OpenAI",
        "author": "Hannah Okafor",
        "published": datetime(2026, 11, 24, 7, 40, tzinfo=timezone.utc),
        "categories": ["OpenAI", " <b>Deals</b> ", ""],
        "summary_html": "<p>A filing spells out the split.</p>",
        "content_html": "<p>A filing spells out the split.</p><p>More &amp; more.</p><script>x()</script>",
    }
    fields.update(kw)
    return RawEntry(**fields)  # type: ignore[arg-type]


def test_to_article_fields() -> None:
    a = to_article(raw(), base_url=BASE, fetched_at=FETCHED)
    assert a.guid == "desk-1"
    assert a.link == "https://desk.example/2026/11/24/deal/?utm_source=rss"
    assert a.url == "https://desk.example/2026/11/24/deal/"
    assert (a.title, a.author) == ("Microsoft & OpenAI", "Hannah Okafor")
    assert (a.published, a.published_from_feed) == (datetime(2026, 11, 24, 7, 40, tzinfo=timezone.utc), True)
    assert a.categories == ["OpenAI", "Deals"]
    assert a.summary_html == "<p>A filing spells out the split.</p>"  # HTML kept as it came
    assert a.summary_text == "A filing spells out the split."
    assert a.content_text == "A filing spells out the split. More & more."
    assert a.text == a.content_text


@pytest.mark.parametrize(
    ("published", "expected", "from_feed"),
    [
        (None, FETCHED, False),
        (FETCHED + timedelta(days=3), FETCHED, False),  # a publisher clock in the future
        (FETCHED + timedelta(seconds=1), FETCHED, False),
        (FETCHED, FETCHED, True),  # near miss: exactly now is not the future
        (FETCHED - timedelta(days=400), FETCHED - timedelta(days=400), True),
        (
            datetime(2026, 11, 24, 9, 0, tzinfo=timezone(timedelta(hours=2))),
            datetime(2026, 11, 24, 7, 0, tzinfo=timezone.utc),
            True,
        ),
    ],
)
def test_published_time(published: datetime | None, expected: datetime, from_feed: bool) -> None:
    a = to_article(raw(published=published), base_url=BASE, fetched_at=FETCHED)
    assert (a.published, a.published_from_feed) == (expected, from_feed)
    assert a.published.utcoffset() == timedelta(0)


def test_fetch_time_in_another_zone_is_stored_as_utc() -> None:
    local = FETCHED.astimezone(timezone(timedelta(hours=-5)))
    a = to_article(raw(published=None), base_url=BASE, fetched_at=local)
    assert a.published == FETCHED and a.published.tzinfo == timezone.utc


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("/2026/11/deal", "https://desk.example/2026/11/deal"),
        ("deal.html", "https://desk.example/feed/deal.html"),
        ("../deal.html", "https://desk.example/deal.html"),
        ("//cdn.desk.example/x", "https://cdn.desk.example/x"),
        (" https://other.example/x ", "https://other.example/x"),  # absolute: base ignored
    ],
)
def test_relative_link_resolved_against_base_url(link: str, expected: str) -> None:
    a = to_article(raw(link=link), base_url=BASE, fetched_at=FETCHED)
    assert a.link == expected and a.url == canonical_url(expected)


# The key an entry is stored under is decided by monitor.ingest over the whole
# fetch (tests/test_ingest.py): clean keeps only the feed's own id, or none.
def test_no_guid_stays_empty_and_the_url_is_canonical() -> None:
    a = to_article(raw(guid=None, link="https://Desk.example/x?utm_source=a#top"), base_url=BASE, fetched_at=FETCHED)
    assert a.guid == "" and a.url == "https://desk.example/x"
    blank = to_article(raw(guid="   ", link="/y"), base_url=BASE, fetched_at=FETCHED)
    assert blank.guid == "" and blank.url == "https://desk.example/y"


def test_no_guid_and_no_link_gets_a_url_from_a_hash_of_the_text() -> None:
    a = to_article(raw(guid=None, link=None), base_url=BASE, fetched_at=FETCHED)
    expected = "sha1:" + hashlib.sha1("Microsoft & OpenAI\nA filing spells out the split.".encode()).hexdigest()
    assert a.guid == ""
    assert a.url == "urn:entry:" + expected and a.link == a.url
    other = to_article(raw(guid=None, link=None, title="Another"), base_url=BASE, fetched_at=FETCHED)
    assert other.url != a.url


def test_entries_with_only_content_do_not_share_a_hash() -> None:
    one = to_article(raw(guid=None, link=None, title="", summary_html="", content_html="<p>First note</p>"), base_url=BASE, fetched_at=FETCHED)
    two = to_article(raw(guid=None, link=None, title="", summary_html="", content_html="<p>Second note</p>"), base_url=BASE, fetched_at=FETCHED)
    assert one.url != two.url
    assert one.title == "(untitled)"


def test_guid_without_link_keeps_a_url_for_dedup() -> None:
    assert to_article(raw(guid="https://desk.example/p/9", link=None), base_url=BASE, fetched_at=FETCHED).url == "https://desk.example/p/9"
    assert to_article(raw(guid="tag:desk,2026:9", link=None), base_url=BASE, fetched_at=FETCHED).url == "urn:entry:tag:desk,2026:9"


@pytest.mark.parametrize("title", ["", "   ", "<p></p>", "<script>x</script>"])
def test_empty_title_becomes_untitled(title: str) -> None:
    assert to_article(raw(title=title), base_url=BASE, fetched_at=FETCHED).title == "(untitled)"
