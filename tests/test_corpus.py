"""parse_feed and to_article over the shared corpus of real publishers' feeds.

The corpus (../shared/corpus/feeds, with MANIFEST.tsv) is read in place and
never copied into the project. Without it the module is skipped; in CI it
is present. Wellformed files must yield exactly MANIFEST's entry_count;
illformed ones either yield entries (with a warning where defective) or
raise FeedError, never anything else.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path

import pytest

from monitor.clean import to_article
from monitor.parse import FeedError, ParsedFeed, parse_feed

# feedparser warns when a key it is retiring is read; parse must not read them.
pytestmark = pytest.mark.filterwarnings("error::DeprecationWarning")

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "feeds"
if not (CORPUS / "MANIFEST.tsv").is_file():
    pytest.skip(f"feed corpus not found at {CORPUS} (it lives beside the project in CI)", allow_module_level=True)

FETCHED = datetime(2030, 1, 1, tzinfo=timezone.utc)  # after every corpus date, so feed dates are kept
BASE = "https://corpus.example/feed"

ROWS = {row["file"]: row for row in csv.DictReader((CORPUS / "MANIFEST.tsv").open(encoding="utf-8"), delimiter="\t")}
WELLFORMED = sorted(f for f in ROWS if f.startswith("wellformed/"))
ILLFORMED = sorted(f for f in ROWS if f.startswith("illformed/"))

# Wellformed files where our count legitimately differs from MANIFEST's
# (which counts <item>/<entry> elements with ElementTree), with the reason.
# Empty today: the one that differed (125-pcmag-dvorak, an empty <item/>
# nested in every item) now matches because empty entries are dropped.
COUNT_EXCEPTIONS: dict[str, tuple[int, str]] = {}

# Illformed files whose only defect is a newline before <?xml ...?>.
LEADING_WS = sorted(f for f in ILLFORMED if ROWS[f]["notes"].startswith("DEFECT=only defect: 1 leading newline"))
# The one "html" file that is really a feed: an Atom <feed> inside an XHTML <body>.
WRAPPED_ATOM = "illformed/014-atom-wrapped-in-xhtml.xml"
HTML = sorted(f for f in ILLFORMED if ROWS[f]["format"] == "html" and f != WRAPPED_ATOM)


@cache
def parsed(name: str) -> ParsedFeed | FeedError:
    try:
        return parse_feed((CORPUS / name).read_bytes(), BASE, None)
    except FeedError as exc:
        return exc


def expected_count(name: str) -> int:
    return int(ROWS[name]["entry_count"].split()[0])


def test_manifest_is_what_this_test_expects() -> None:
    # If the corpus is rebuilt these guard the selections below from silently emptying.
    assert len(WELLFORMED) == 148 and len(ILLFORMED) == 31
    assert len(LEADING_WS) == 8 and len(HTML) == 10 and WRAPPED_ATOM in ROWS


@pytest.mark.parametrize("name", WELLFORMED)
def test_wellformed_feed_yields_manifest_entry_count(name: str) -> None:
    result = parsed(name)
    assert not isinstance(result, FeedError), f"{name}: {result}"
    want, _why = COUNT_EXCEPTIONS.get(name, (expected_count(name), ""))
    assert len(result.entries) == want
    assert result.warning is None, f"{name}: {result.warning}"
    assert result.format != "unknown"


@pytest.mark.parametrize("name", WELLFORMED)
def test_every_wellformed_entry_becomes_an_article(name: str) -> None:
    result = parsed(name)
    assert not isinstance(result, FeedError)
    for raw in result.entries:
        a = to_article(raw, base_url=BASE, fetched_at=FETCHED)
        assert a.title.strip() and "\n" not in a.title
        assert a.url  # the guid may be empty: monitor.ingest decides the key
        assert a.published.utcoffset() == timedelta(0) and a.published <= FETCHED
        assert a.published_from_feed == (raw.published is not None)


@pytest.mark.parametrize("name", ILLFORMED)
def test_illformed_input_yields_entries_or_feed_error(name: str) -> None:
    result = parsed(name)  # anything but FeedError propagates and fails here
    if isinstance(result, FeedError):
        assert str(result).startswith(("not a feed: ", "malformed feed with no entries: "))
        assert "\n" not in str(result)
        return
    assert result.entries, f"{name}: no entries and no FeedError"
    for raw in result.entries:
        to_article(raw, base_url=BASE, fetched_at=FETCHED)


@pytest.mark.parametrize("name", HTML)
def test_html_pages_raise_feed_error(name: str) -> None:
    result = parsed(name)
    assert isinstance(result, FeedError) and str(result) == "not a feed: the URL returned an HTML page"


def test_atom_feed_wrapped_in_xhtml_page_is_read() -> None:
    # feedparser alone reads this page's nested <feed>; it is not "an HTML page".
    result = parsed(WRAPPED_ATOM)
    assert not isinstance(result, FeedError), str(result)
    assert result.format == "atom10"
    assert len(result.entries) == expected_count(WRAPPED_ATOM)
    assert result.entries[0].title == "Down time"


@pytest.mark.parametrize("name", LEADING_WS)
def test_leading_whitespace_feeds_yield_their_entries_without_warning(name: str) -> None:
    result = parsed(name)
    assert not isinstance(result, FeedError), f"{name}: {result}"
    assert len(result.entries) == expected_count(name)
    assert result.warning is None


@pytest.mark.parametrize(
    ("name", "defect"),
    [
        ("illformed/001-unescaped-amp-boldk.xml", "not well-formed"),
        ("illformed/002-unescaped-amp-guardian.xml", "not well-formed"),
        ("illformed/003-undeclared-entity-myanimelist.xml", "undefined entity"),
        ("illformed/004-undeclared-entity-dbengines.xml", "undefined entity"),
        ("illformed/006-undeclared-latin1-lecerclepsy.xml", "parsed as windows-1252"),
        ("illformed/007-undeclared-latin1-uol.rss", "parsed as windows-1252"),
        ("illformed/008-control-chars-stackoverflow.xml", "not well-formed"),
    ],
)
def test_defective_feeds_that_yield_entries_carry_a_warning(name: str, defect: str) -> None:
    result = parsed(name)
    assert not isinstance(result, FeedError), f"{name}: {result}"
    assert result.entries and result.warning is not None and defect in result.warning


@pytest.mark.parametrize("name", ["illformed/011-gzip-body-nshipster.xml", "illformed/012-gzip-body-iconv.xml"])
def test_gzip_bodies_are_inflated_and_parsed(name: str) -> None:
    result = parsed(name)
    assert not isinstance(result, FeedError), f"{name}: {result}"
    assert len(result.entries) == expected_count(name)
    assert result.warning is None


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("illformed/005-truncated-reuters.xml", "malformed feed with no entries: "),
        ("illformed/009-truncated-jsonfeed-allthis.json", "not a feed: invalid JSON"),
        ("illformed/010-rss-as-json-scriptingnews.json", "not a feed: JSON without a jsonfeed.org version"),
    ],
)
def test_broken_bodies_without_entries_raise_with_the_reason(name: str, message: str) -> None:
    result = parsed(name)
    assert isinstance(result, FeedError) and str(result).startswith(message)
