"""The whole article: fetch the page an entry links to and extract its main text.

Many feeds carry a title and one line of summary; the rules and the story
grouping then see a fraction of the story. For feeds marked `full_text`
(and, with `[fulltext] min_chars`, for any entry whose text is shorter than
that), the linked page is fetched through `monitor.fetch.Fetcher` - so with
the feeds' size cap, total deadline, per-host limit, and refusal of
redirects to non-HTTP schemes - and its main text is extracted with
readability-lxml.

Why readability-lxml and not trafilatura: it adds four small packages
(lxml, lxml-html-clean, cssselect, chardet) where trafilatura brings fifteen
(babel, dateparser, regex, htmldate, courlan, justext, ...) for metadata and
crawling we do not use; it extracts a 6-49 KB news page in 12-44 ms here
(bench/fulltext.py: 0.9-2.5x what bs4 alone takes to read the whole page's
text, which the fetch dwarfs); its 0.9 release reports F1 0.975 on a
public corpus of 181 saved pages. trafilatura scores as well or a little
better in published comparisons; not enough to carry its dependencies.

A page that cannot be had is a reason, never an exception: the entry keeps
the feed's summary and the reason is stored on the article
(`full_text_error`) and said in the feed's warning. Nothing here touches the
store: the pipeline asks it which pages are already known.
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from core.errors import MonitorError
from monitor.clean import html_to_text
from monitor.fetch import Fetcher

log = logging.getLogger("monitor.fulltext")

ACCEPT_HTML = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
_HTML_TYPES = {"text/html", "application/xhtml+xml"}
# A page's main text beyond this is not what a rule needs, and a runaway page must not bloat the store.
MAX_TEXT_CHARS = 200_000
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)


@dataclass(frozen=True)
class FullTextSettings:
    """`[fulltext]` in the configuration."""

    # Also fetch the page of any entry whose text is shorter than this (0: only feeds marked full_text).
    min_chars: int = 0


@dataclass(frozen=True)
class PageText:
    """What retrieving one page gave: its main text, or why there is none."""

    text: str = ""
    error: str | None = None


class PageError(MonitorError):
    """A page whose main text cannot be extracted (not HTML, no text)."""


def wants_page(*, feed_full_text: bool, text_chars: int, min_chars: int) -> bool:
    """Whether an entry's page should be fetched: its feed asks for it, or its text is too short."""
    return feed_full_text or (min_chars > 0 and text_chars < min_chars)


def extract_main_text(body: bytes, content_type: str | None) -> str:
    """The main text of an HTML page (pure). Raises PageError when it is not HTML or has no text."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype and ctype not in _HTML_TYPES:
        raise PageError(f"not an HTML page ({ctype})")
    head = body[:2048]
    if b"\x00" in head or (not ctype and b"<" not in head):
        raise PageError("not an HTML page (binary or plain content)")
    from readability import Document  # imported here: only full-text feeds pay for lxml

    charset = _CHARSET.search(content_type or "")
    source: str | bytes = body
    if charset:
        try:
            source = body.decode(charset.group(1), errors="replace")
        except LookupError:
            source = body
    try:
        html = Document(source).summary(html_partial=True)
    except Exception as exc:  # readability's Unparseable and lxml's parser errors on broken markup
        raise PageError(f"page could not be read: {type(exc).__name__}: {str(exc)[:120]}") from None
    text = html_to_text(html)
    if not text:
        raise PageError("no article text found on the page")
    return text[:MAX_TEXT_CHARS]


def retrieve_page(fetcher: Fetcher, url: str, *, now: datetime) -> PageText:
    """Fetch one page and extract its main text; never raises for the page's trouble."""
    result = fetcher.fetch(url, now=now, accept=ACCEPT_HTML)
    if result.error is not None:
        return PageText(error=result.error)
    if not result.body:
        return PageText(error=f"empty page (HTTP {result.status})")
    try:
        return PageText(text=extract_main_text(result.body, result.content_type))
    except PageError as exc:
        return PageText(error=str(exc))


def retrieve_pages(fetcher: Fetcher, urls: list[str], *, now: datetime, workers: int = 4) -> dict[str, PageText]:
    """Retrieve these pages, a few at a time (the fetcher still bounds each host)."""
    urls = list(dict.fromkeys(urls))
    if not urls:
        return {}
    if len(urls) == 1 or workers <= 1:
        return {u: retrieve_page(fetcher, u, now=now) for u in urls}
    with ThreadPoolExecutor(max_workers=min(workers, len(urls)), thread_name_prefix="page") as pool:
        texts = list(pool.map(lambda u: retrieve_page(fetcher, u, now=now), urls))
    return dict(zip(urls, texts))


def failure_warning(failed: list[tuple[str, str]], tried: int) -> str | None:
    """The feed warning for pages not retrieved: how many, and the first reasons."""
    if not failed:
        return None
    shown = "; ".join(f"{url}: {why}" for url, why in failed[:3])
    return f"full text: {len(failed)} of {tried} pages not retrieved, the summary is kept ({shown})"
