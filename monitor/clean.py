"""Turn a parsed entry into a clean Article: HTML to text, canonical URL, sane dates.

Pure: strings in, strings out; "now" (the fetch time) is a parameter. The
feed's HTML is kept as it came (it is sanitized when a digest renders it),
and its text is extracted here: with lxml's HTML parser (libxml2, C) for
the common fragment, with beautifulsoup4 (html.parser) for the markup the
two read differently (see `_BS4_ONLY`), so the text is bs4's either way
(tests/test_clean_fast.py checks every corpus entry).
"""

from __future__ import annotations

import hashlib
import re
import threading
from datetime import datetime, timedelta, timezone
from html import unescape
from typing import Protocol
from urllib.parse import unquote_plus, urljoin, urlsplit, urlunsplit

from bs4 import BeautifulSoup
from lxml import etree

from core.types import Article

# Strings inside <script>, <style> and <template> are never part of bs4's
# get_text(); these other elements hold no reader-visible text either.
_DROP = ("noscript", "iframe", "object", "embed", "svg", "math")
_DROP_HINT = re.compile(r"<(?:noscript|iframe|object|embed|svg|math)\b", re.I)
# A reader sees a break at these tags, so their text must not run into the
# next word. A space is put before each in the markup: one C-speed regex
# pass instead of walking the tree in Python (twice as fast per document).
_BLOCK_TAG = re.compile(
    r"<(?=/?(?:p|div|br|li|ul|ol|h[1-6]|blockquote|pre|tr|td|th|table|section|article|header|footer|"
    r"figure|figcaption|dd|dt|hr|aside|nav|main|details|summary)\b)",
    re.I,
)
_WS = re.compile(r"\s+")

# lxml reads a fragment 8-10x faster than bs4 with html.parser and gives the
# same text, except where the two parsers disagree (measured on the corpus and
# on hand-made cases, tests/test_clean_fast.py): CDATA sections and
# conditional comments, an unclosed comment, text after </body> or </html>,
# textarea/xmp/plaintext content, a doctype inside the fragment, NUL and BOM characters, a character
# reference without its semicolon (`&copy`, `&#169`), and a tag cut short or a "<" with no ">" after it
# or with an unclosed quote (a summary truncated mid-tag). Those go to bs4.
# The tag-head pattern is bounded (no backtracking, quoted values up to 4,000
# characters) so the check stays linear.
_BS4_ONLY = re.compile(
    r"<!\[|<!doctype|<[^<>]*+$|</?(?:html|body|textarea|xmp|plaintext)\b|[\x00\ufeff]|&(?>[A-Za-z][A-Za-z0-9]*|#[xX][0-9A-Fa-f]*|#[0-9]*)(?!;)"
    r"|<[A-Za-z](?:[^<>\"']++|\"[^\"]{0,4000}+\"|'[^']{0,4000}+')*+(?!>)",
    re.I,
)
# The fast path reads only fragments made of these elements (what feeds use; measured on the corpus):
# head elements, forms, frames, embedded objects, SVG and MathML are where libxml2's HTML parser
# nests, moves or swallows text otherwise than html.parser does, so a fragment with any other tag goes to bs4.
_FAST_TAGS = frozenset(
    """a abbr acronym address article aside audio b bdi bdo big blockquote br caption center cite code col
    colgroup dd del details dfn div dl dt em figcaption figure font footer h1 h2 h3 h4 h5 h6 header hr i
    iframe img ins kbd li main mark nav ol p picture pre q ruby s samp script section small
    source span strike strong style sub summary sup table tbody td tfoot th thead time tr track tt u ul var
    video wbr""".split()
)
_TAG_NAME = re.compile(r"</?([A-Za-z][A-Za-z0-9:-]*)")
# Never text in bs4's get_text either: script, style, template and ruby annotations.
_LXML_SKIP = ("script", "style", "template", "rt", "rp") + _DROP
_SKIPPED = frozenset(_LXML_SKIP) & _FAST_TAGS
_SKIP_TAGS = {n: re.compile(rf"<(/?){n}\b[^<>]*?(/?)>", re.I) for n in _SKIPPED}
# lxml parsers must not be shared between threads (parse_clean_tag runs in the poll threads on small rounds).
_LOCAL = threading.local()


def _lxml_parser() -> etree.HTMLParser:
    parser = getattr(_LOCAL, "parser", None)
    if parser is None:
        parser = _LOCAL.parser = etree.HTMLParser(remove_comments=True, remove_pis=True, no_network=True,
                                                  huge_tree=True)
    return parser


class RawEntryLike(Protocol):
    """What clean needs of a parsed entry (monitor.parse.RawEntry has it)."""

    guid: str | None
    link: str | None
    title: str
    author: str | None
    published: datetime | None
    categories: list[str]
    summary_html: str
    content_html: str

# Query parameters that say how a reader arrived, not what they read (removed
# for dedup): utm_*, click ids of ad and mail platforms, share/referral tags.
TRACKING_PARAMS = {
    "fbclid", "gclid", "dclid", "gclsrc", "msclkid", "yclid", "twclid", "igshid", "mc_cid", "mc_eid",
    "_hsenc", "_hsmi", "mkt_tok", "ref_src", "ref_url", "cmpid", "ncid", "sr_share", "smid", "ocid",
    "guccounter", "guce_referrer", "guce_referrer_sig", "spm", "__twitter_impression", "oly_enc_id", "oly_anon_id",
    "vero_id", "wt_mc", "wt.mc_id", "at_medium", "at_campaign",
}
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hmb_")


def html_to_text(html: str) -> str:
    """Reader-visible text of an HTML fragment, whitespace collapsed, entities decoded."""
    if not html:
        return ""
    if "<" not in html:
        # Plain text (most titles): no parser needed.
        return _WS.sub(" ", unescape(html) if "&" in html else html).strip()
    marked = _BLOCK_TAG.sub(" <", html)
    if not _lxml_reads_as_bs4(html):
        return _bs4_text(html, marked)
    parser = _lxml_parser()
    try:
        root = etree.fromstring(marked, parser)
    except (etree.LxmlError, ValueError):
        return _bs4_text(html, marked)
    # A fatal error (nesting past libxml2's 2,048 levels) means libxml2 stopped reading.
    if root is None or parser.error_log.filter_from_level(etree.ErrorLevels.FATAL):
        return _bs4_text(html, marked)
    etree.strip_elements(root, *_LXML_SKIP, with_tail=False)
    # str.split() splits on exactly what `\s` matches (str.isspace): the same text as _WS.sub, faster.
    return " ".join(etree.tostring(root, method="text", encoding=str).split())


def _lxml_reads_as_bs4(html: str) -> bool:
    """Whether lxml gives this fragment the text bs4 would (see `_BS4_ONLY`, `_FAST_TAGS`)."""
    if "<!--" in html and html.rfind("<!--") > html.rfind("-->"):
        return False  # an unclosed comment: html.parser keeps it as text
    return not _BS4_ONLY.search(html) and _fast_tags(html)


def _fast_tags(html: str) -> bool:
    names = set(_TAG_NAME.findall(html))
    if not names <= _FAST_TAGS:
        names = {n.lower() for n in names}
        if not names <= _FAST_TAGS:
            return False
    # An element whose text is dropped must be opened and closed in turn (not nested, never <x/>):
    # the two parsers end an unclosed or self-closed one in different places.
    # Only script and style hold markup-like text both read raw; an iframe's content must be plain text.
    for name in names & _SKIPPED:
        depth, content_from = 0, 0
        for m in _SKIP_TAGS[name].finditer(html):
            depth += -1 if m.group(1) else 1
            if m.group(2) or not 0 <= depth <= 1:
                return False
            if depth:
                content_from = m.end()
            elif name not in ("script", "style") and "<" in html[content_from : m.start()]:
                return False
        if depth:
            return False
    return True


def _bs4_text(html: str, marked: str) -> str:
    soup = BeautifulSoup(marked, "html.parser")
    if _DROP_HINT.search(html):
        for tag in soup.find_all(_DROP):
            tag.decompose()
    return _WS.sub(" ", soup.get_text()).strip()


def canonical_url(url: str) -> str:
    """The URL as a dedup key: fragment and tracking parameters removed, scheme and host lower-cased."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return url
    host = (parts.hostname or "").lower().rstrip(".")
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal keeps its brackets
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        netloc = f"{host}:{port}"
    if parts.username or parts.password:
        netloc = f"{parts.username or ''}{':' + parts.password if parts.password else ''}@{netloc}"
    # Other parameters are kept byte for byte and in order: re-encoding them
    # would turn `?a%20b` into `?a+b` and `?flag` into `?flag=`, which some
    # servers read differently.
    query = "&".join(p for p in parts.query.split("&") if p and not _is_tracking(p))
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, query, ""))


def _is_tracking(param: str) -> bool:
    key = unquote_plus(param.split("=", 1)[0]).strip().lower()
    return key in TRACKING_PARAMS or key.startswith(_TRACKING_PREFIXES)


# Dates a feed may give that we believe: before the web's news feeds or more
# than a day ahead of our clock, a date is a placeholder or a broken clock
# (`Sat, 01 Jan 0001`), and the entry is dated when we first saw it.
EARLIEST_DATE = datetime(1990, 1, 1, tzinfo=timezone.utc)
FUTURE_SLACK = timedelta(days=1)
MAX_TITLE = 2000  # characters: a title longer than this is a broken feed, not a headline

# Lone surrogates cannot be encoded for SQLite or JSON; C0 controls in a
# one-line field are noise a terminal would interpret.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def storable(text: str) -> str:
    """Text with lone surrogates (which SQLite and JSON cannot encode) replaced."""
    return _SURROGATE.sub("\ufffd", text) if text and not text.isascii() else text


def one_line(text: str) -> str:
    return _CONTROL.sub(" ", storable(text)) if text else text


def date_out_of_range(published: datetime | None, fetched_at: datetime) -> bool:
    """A feed date we do not believe (see EARLIEST_DATE): the entry is dated when first seen."""
    if published is None:
        return False
    try:
        return published < EARLIEST_DATE or published > fetched_at + FUTURE_SLACK
    except (OverflowError, TypeError):
        return True


def to_article(raw: RawEntryLike, *, base_url: str, fetched_at: datetime) -> Article:
    """A parsed entry as an Article, ready to tag and store.

    The published time falls back to the fetch time when the feed gives
    none, one in the future (a wrong clock or time zone at the publisher
    must not pin an item to the top of every digest), or one before 1990.

    ``guid`` is the feed's own id for the entry, or empty: which key an
    entry is stored under is decided by `monitor.ingest`, which sees the
    whole fetch.
    """
    link = one_line(urljoin(base_url, raw.link.strip()) if raw.link else "")
    url = canonical_url(link) if link else ""
    title = one_line(html_to_text(raw.title or ""))[:MAX_TITLE]
    summary_html = storable(raw.summary_html or "")
    content_html = storable(raw.content_html or "")
    summary_text = html_to_text(summary_html)
    content_text = html_to_text(content_html)
    fetched_at = fetched_at.astimezone(timezone.utc)
    published, from_feed = raw.published, True
    if published is None or date_out_of_range(published, fetched_at) or published > fetched_at:
        published, from_feed = fetched_at, False
    else:
        published = published.astimezone(timezone.utc)
    guid = one_line((raw.guid or "").strip())
    if not url:
        if guid:
            url = guid if guid.startswith(("http://", "https://")) else f"urn:entry:{guid}"
        else:
            # No id and no link: the text is all that tells entries apart. (The
            # content counts only when there is no title or summary, so keys
            # stored before it counted at all stay the same.)
            basis = f"{title}\n{summary_text}" if title or summary_text else f"\n\n{content_text}"
            url = "urn:entry:sha1:" + hashlib.sha1(basis.encode()).hexdigest()
    return Article(
        guid=guid,
        url=url,
        link=link or url,
        title=title or "(untitled)",
        author=one_line(html_to_text(raw.author or "")),
        published=published,
        published_from_feed=from_feed,
        categories=[c for c in (one_line(html_to_text(x)) for x in raw.categories) if c],
        summary_html=summary_html,
        summary_text=summary_text,
        content_html=content_html,
        content_text=content_text,
    )
