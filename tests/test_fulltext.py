"""Full-text retrieval end to end: feeds and article pages served on 127.0.0.1, a real SQLite file."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from feedgen import rss, write_config
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from core.errors import ConfigError
from core.types import Article, combined_text
from monitor.config import load_config
from monitor.fulltext import PageError, extract_main_text
from monitor.service import feed_status, open_store, poll_once

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)

# Our own words. The summary alone matches no rule; the page's text makes the IPO rule match.
SUMMARY = "A short note from the wire."
PAGE = """<!doctype html><html><head><title>Wire story</title>
<script>var tracking = "OpenAI IPO in a script must not count";</script></head>
<body><nav><a href="/">Home</a> <a href="/tech">Tech</a> <a href="/about">About us</a></nav>
<article><h1>Bankers prepare the paperwork</h1>
<p>People familiar with the plans said that OpenAI has asked banks to prepare an initial public offering
that could value the company far above its last private round, according to three people briefed on it.</p>
<p>The preparations are at an early stage and no date has been set, the people said, adding that the
board had not yet approved a filing and that the timing depended on how markets behave next year.</p>
<p>A spokesperson declined to comment on the report when reached by telephone on Thursday evening.</p>
</article><footer>Copyright the wire. All rights reserved.</footer></body></html>"""


def config(tmp_path: Path, feed_url: str, *, full_text: bool = True, extra: str = "") -> Path:
    feed = f'[[feeds]]\nurl = "{feed_url}"\n' + ("full_text = true\n" if full_text else "")
    return write_config(tmp_path, [], extra=feed + extra)


def serve_feed(httpserver: HTTPServer, items: list[dict[str, str]]) -> str:
    httpserver.expect_request("/feed").respond_with_data(rss(items), content_type="application/rss+xml")
    return httpserver.url_for("/feed")


def item(httpserver: HTTPServer, path: str, text: str = SUMMARY, title: str = "Paperwork at the banks") -> dict[str, str]:
    return {"title": title, "link": httpserver.url_for(path), "text": text}


def stored(cfg, url: str) -> dict:
    with open_store(cfg, now=NOW) as store:
        return store.article(url)


def warning_of(cfg, url: str) -> str | None:
    with open_store(cfg, now=NOW) as store:
        return {r["url"]: r for r in feed_status(store)}[url]["last_warning"]


def test_page_text_is_stored_tagged_searchable_and_fetched_once(httpserver: HTTPServer, tmp_path: Path) -> None:
    page_requests: list[str] = []

    def page(request: Request) -> Response:
        page_requests.append(request.headers.get("Accept", ""))
        return Response(PAGE, content_type="text/html; charset=utf-8")

    httpserver.expect_request("/story/1").respond_with_handler(page)
    it = item(httpserver, "/story/1")
    feed_url = serve_feed(httpserver, [it])
    cfg = load_config(config(tmp_path, feed_url))

    first = poll_once(cfg, now=NOW)
    assert (first.new, first.flagged) == (1, 1)
    row = stored(cfg, it["link"])
    assert row["summary_text"] == SUMMARY  # the feed's summary is kept beside the page's text
    assert "initial public offering" in row["full_text"]
    assert "must not count" not in row["full_text"] and "All rights reserved" not in row["full_text"]
    assert row["full_text_error"] is None
    assert row["tags"] == ["ipo"] and {m.rule for m in row["matches"]} == {"openai-ipo"}
    assert row["story_id"] is not None
    assert page_requests and "text/html" in page_requests[0]
    with open_store(cfg, now=NOW) as store:
        assert [r["id"] for r in store.search("paperwork telephone")] == [row["id"]]

    second = poll_once(cfg, now=NOW + timedelta(hours=1))  # the feed answers 200 again, same entry
    assert (second.new, second.feeds[0].updated) == (0, 0)
    assert len(page_requests) == 1  # a stored article's page is not fetched again
    assert stored(cfg, it["link"])["full_text"] == row["full_text"]


def test_an_edited_entry_keeps_its_stored_page_text_without_a_new_request(httpserver: HTTPServer, tmp_path: Path) -> None:
    hits: list[int] = []
    httpserver.expect_request("/story/e").respond_with_handler(
        lambda r: hits.append(1) or Response(PAGE, content_type="text/html")
    )
    it = item(httpserver, "/story/e")
    edited = dict(it, title="Paperwork at the banks, updated")
    bodies = [rss([it]), rss([edited])]
    httpserver.expect_request("/feed").respond_with_handler(
        lambda r: Response(bodies.pop(0), content_type="application/rss+xml")
    )
    cfg = load_config(config(tmp_path, httpserver.url_for("/feed")))
    poll_once(cfg, now=NOW)
    summary = poll_once(cfg, now=NOW + timedelta(hours=1))
    assert summary.feeds[0].updated == 1
    row = stored(cfg, it["link"])
    assert row["title"] == edited["title"]
    assert row["flagged"] and "initial public offering" in row["full_text"]  # the rules still saw the page
    assert hits == [1]


def _huge(request: Request) -> Response:
    return Response("<html><body><p>" + "word " * 40_000 + "</p></body></html>", content_type="text/html")


def _pdf(request: Request) -> Response:
    return Response(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", content_type="application/pdf")


def _binary(request: Request) -> Response:
    return Response(b"\x00\x01\x02\x03" * 100, content_type="application/octet-stream")


def _to_file(request: Request) -> Response:
    return Response(status=302, headers={"Location": "file:///etc/passwd"})


def _to_ftp(request: Request) -> Response:
    return Response(status=301, headers={"Location": "ftp://files.example/story.html"})


def _missing(request: Request) -> Response:
    return Response("gone fishing", status=404, content_type="text/html")


def _empty_article(request: Request) -> Response:
    return Response("<html><body><script>x()</script></body></html>", content_type="text/html")


@pytest.mark.parametrize(
    "handler, reason",
    [
        (_huge, "response larger than 0.05 MB"),
        (_pdf, "not an HTML page (application/pdf)"),
        (_binary, "not an HTML page (application/octet-stream)"),
        (_to_file, "redirect to a non-HTTP URL refused (file:///etc/passwd)"),
        (_to_ftp, "redirect to a non-HTTP URL refused (ftp://files.example/story.html)"),
        (_missing, "HTTP 404 NOT FOUND"),
        (_empty_article, "no article text found on the page"),
    ],
    ids=["huge", "pdf", "binary", "redirect-file", "redirect-ftp", "404", "no-text"],
)
def test_a_page_that_cannot_be_had_keeps_the_summary_and_records_why(
    httpserver: HTTPServer, tmp_path: Path, handler, reason: str
) -> None:
    httpserver.expect_request("/story/x").respond_with_handler(handler)
    it = item(httpserver, "/story/x", text="OpenAI weighs an IPO, the summary says.")
    feed_url = serve_feed(httpserver, [it])
    cfg = load_config(_with_max_bytes(tmp_path, feed_url, 50_000))

    summary = poll_once(cfg, now=NOW)
    assert (summary.ok, summary.new) == (1, 1)  # the feed itself is fine
    row = stored(cfg, it["link"])
    assert row["summary_text"] == it["text"] and row["full_text"] == ""
    assert reason in row["full_text_error"]
    assert row["flagged"]  # the summary was still tagged
    warning = warning_of(cfg, feed_url)
    assert warning is not None and "full text: 1 of 1 pages not retrieved" in warning and reason in warning


def _with_max_bytes(tmp_path: Path, feed_url: str, max_bytes: int) -> Path:
    path = config(tmp_path, feed_url)
    text = path.read_text(encoding="utf-8").replace("[fetch]\n", f"[fetch]\nmax_bytes = {max_bytes}\n", 1)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def test_a_slow_page_is_abandoned_at_the_total_deadline(
    httpserver: HTTPServer, tmp_path: Path, release: threading.Event
) -> None:
    def trickle(request: Request) -> Response:
        def body() -> Iterator[bytes]:
            yield b"<html><body><p>OpenAI"
            for _ in range(40):  # a byte every 0.1 s: no single read times out, the whole does
                if release.wait(0.1):
                    return
                yield b" ."
            yield b"</p></body></html>"

        return Response(body(), content_type="text/html")

    httpserver.expect_request("/story/slow").respond_with_handler(trickle)
    it = item(httpserver, "/story/slow")
    feed_url = serve_feed(httpserver, [it])
    path = config(tmp_path, feed_url)
    path.write_text(path.read_text(encoding="utf-8").replace("timeout = 5", "timeout = 1"), encoding="utf-8")
    cfg = load_config(path)

    poll_once(cfg, now=NOW)
    release.set()
    row = stored(cfg, it["link"])
    assert row["full_text"] == "" and row["summary_text"] == SUMMARY
    assert "within 1 s (server too slow)" in row["full_text_error"]


def test_min_chars_fetches_only_short_entries_of_other_feeds(httpserver: HTTPServer, tmp_path: Path) -> None:
    fetched: list[str] = []
    for path in ("/short", "/long"):
        httpserver.expect_request(path).respond_with_handler(
            lambda r: fetched.append(r.path) or Response(PAGE, content_type="text/html")
        )
    short = item(httpserver, "/short", title="Short one")
    long = item(httpserver, "/long", title="Long one", text="A long enough summary. " * 20)
    feed_url = serve_feed(httpserver, [short, long])
    cfg = load_config(config(tmp_path, feed_url, full_text=False, extra="[fulltext]\nmin_chars = 200\n"))
    poll_once(cfg, now=NOW)
    assert fetched == ["/short"]
    assert "initial public offering" in stored(cfg, short["link"])["full_text"]
    assert stored(cfg, long["link"])["full_text"] == ""


def test_without_full_text_no_page_is_fetched(httpserver: HTTPServer, tmp_path: Path) -> None:
    it = item(httpserver, "/never")
    feed_url = serve_feed(httpserver, [it])
    cfg = load_config(config(tmp_path, feed_url, full_text=False))
    poll_once(cfg, now=NOW)
    assert all(req.path != "/never" for req, _ in httpserver.log)
    assert stored(cfg, it["link"])["full_text_error"] is None


def test_extract_main_text_keeps_the_article_and_drops_scripts() -> None:
    text = extract_main_text(PAGE.encode(), "text/html; charset=utf-8")
    assert "Bankers prepare the paperwork" in text
    assert "declined to comment" in text and "var tracking" not in text


def test_extract_main_text_reads_the_declared_charset() -> None:
    page = "<html><body><article><p>" + "Übernahme durch Microsoft geprüft, heißt es. " * 8 + "</p></article></body></html>"
    assert "Übernahme" in extract_main_text(page.encode("iso-8859-1"), "text/html; charset=iso-8859-1")


@pytest.mark.parametrize("ctype", ["image/png", "application/json", "text/plain"])
def test_extract_main_text_refuses_what_is_not_html(ctype: str) -> None:
    with pytest.raises(PageError, match=f"not an HTML page \\({ctype}\\)"):
        extract_main_text(b"<p>hello</p>", ctype)


def test_the_content_hash_does_not_see_the_page() -> None:
    a = Article("g", "https://x.example/a", "https://x.example/a", "T", "", NOW, True, summary_text="sum")
    before = (a.text, a.feed_text)
    a.set_full_text("sum and the whole page", None)
    assert before == ("sum", "sum")
    assert (a.text, a.feed_text) == ("sum and the whole page", "sum")
    assert combined_text("a line", "", "other page words") == "a line\nother page words"


def test_feed_options_in_config_are_checked(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, [], extra='[[feeds]]\nurl = "https://x.example/f"\nfull_text = "yes"\n[fulltext]\nmin_chars = -3\n'
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = "\n".join(err.value.problems)
    assert "feeds[1].full_text" in text and "fulltext.min_chars" in text


def test_each_new_entry_gets_its_own_page(httpserver: HTTPServer, tmp_path: Path) -> None:
    for n in range(5):
        httpserver.expect_request(f"/p/{n}").respond_with_data(
            PAGE.replace("Bankers", f"Bankers{n}"), content_type="text/html"
        )
    items = [item(httpserver, f"/p/{n}", title=f"Story {n}") for n in range(5)]
    feed_url = serve_feed(httpserver, items)
    cfg = load_config(config(tmp_path, feed_url))
    summary = poll_once(cfg, now=NOW)
    assert summary.new == 5
    for n, it in enumerate(items):
        assert f"Bankers{n}" in stored(cfg, it["link"])["full_text"]


def test_a_word_for_word_copy_in_a_feed_without_full_text_is_still_linked(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/story/c").respond_with_data(PAGE, content_type="text/html")
    it = item(httpserver, "/story/c")
    copy = dict(it, link="https://mirror.example/copy", guid="mirror-1")
    httpserver.expect_request("/a").respond_with_data(rss([it], title="A"), content_type="application/rss+xml")
    httpserver.expect_request("/b").respond_with_data(rss([copy], title="B"), content_type="application/rss+xml")
    feeds = f'[[feeds]]\nurl = "{httpserver.url_for("/a")}"\nfull_text = true\n'
    cfg = load_config(write_config(tmp_path, [], extra=feeds))
    poll_once(cfg, now=NOW)
    feeds += f'[[feeds]]\nurl = "{httpserver.url_for("/b")}"\n'
    cfg = load_config(write_config(tmp_path, [], extra=feeds))
    summary = poll_once(cfg, now=NOW + timedelta(minutes=1))
    b = next(f for f in summary.feeds if f.name == "B")
    assert (b.new, b.linked) == (0, 1)  # the hash is of the feed's words, not of the page fetched for A


def test_m004_on_a_database_with_articles_keeps_them_searchable(tmp_path: Path) -> None:
    import sqlite3

    from sqlite_utils import Database

    from storage import Store
    from storage.schema import migrations

    path = tmp_path / "old.db"
    db = Database(sqlite3.connect(path))
    migrations.apply(db, stop_before="m004_full_text")
    db.execute("INSERT INTO feeds (url, origin_url, added_at) VALUES ('https://a.example/f', 'https://a.example/f', '2026')")
    db.execute(
        "INSERT INTO articles (feed_id, guid, url, link, title, published, published_from_feed, first_seen, updated_at, "
        "content_hash, summary_text) VALUES (1, 'g', 'https://a.example/1', 'https://a.example/1', 'Old one', "
        "'2026-11-01T00:00:00+00:00', 1, '2026', '2026', 'h', 'zebra crossing')"
    )
    db.conn.commit()
    db.conn.close()
    with Store(path) as store:
        assert [r["title"] for r in store.search("zebra")] == ["Old one"]
        row = store.article("https://a.example/1")
        assert (row["full_text"], row["full_text_error"]) == ("", None)
        assert store.list_feeds()[0].full_text == 0 and store.list_feeds()[0].category is None


def test_monitor_status_shows_why_a_page_was_not_retrieved(
    httpserver: HTTPServer, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    import subprocess
    import sys

    httpserver.expect_request("/story/gone").respond_with_data("no", status=404)
    it = item(httpserver, "/story/gone")
    config(tmp_path, serve_feed(httpserver, [it]))

    def monitor(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "monitor", *args], cwd=tmp_path, env=subprocess_env,
            capture_output=True, text=True, timeout=120,
        )

    assert monitor("poll").returncode == 0
    status = monitor("status")
    assert status.returncode == 0, status.stderr
    assert f"full text: 1 of 1 pages not retrieved, the summary is kept ({it['link']}: HTTP 404 NOT FOUND)" in status.stdout
    explain = monitor("rules", "explain", it["link"])
    assert explain.returncode == 0, explain.stderr
    assert "full text: not retrieved (HTTP 404 NOT FOUND); the rules saw the feed's text only" in explain.stdout
