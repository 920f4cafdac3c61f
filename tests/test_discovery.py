"""`monitor feeds add` finds a site's feed: sites served on 127.0.0.1, the real CLI in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from feedgen import rss
from pytest_httpserver import HTTPServer

from monitor.discover import feed_links

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Site Atom</title><id>urn:x</id><updated>2026-11-19T10:00:00Z</updated>
<entry><title>One</title><id>urn:x:1</id><link href="https://site.example/1"/><updated>2026-11-19T10:00:00Z</updated>
<summary>words</summary></entry></feed>"""
FEED = rss([{"title": "One", "link": "https://site.example/1", "text": "words"}], title="Site RSS")


def page(*links: str) -> str:
    return "<!doctype html><html><head><title>A site</title>" + "".join(links) + "</head><body><p>Hello</p></body></html>"


def monitor(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "monitor.toml").write_text("feeds = []\n[fetch]\ntimeout = 5\n")
    return tmp_path


def listed(env: dict[str, str], cwd: Path) -> list[dict]:
    return json.loads(monitor(env, cwd, "feeds", "list", "--json").stdout)


def test_a_page_link_rel_alternate_is_followed_relative_href_resolved(
    httpserver: HTTPServer, site: Path, subprocess_env: dict[str, str]
) -> None:
    httpserver.expect_request("/blog/").respond_with_data(
        page(
            '<link rel="stylesheet" href="/s.css">',
            '<link rel="alternate" type="application/atom+xml" title="Atom" href="feeds/atom">',
            '<link rel="alternate" type="application/rss+xml" href="/rss">',
        ),
        content_type="text/html; charset=utf-8",
    )
    httpserver.expect_request("/blog/feeds/atom").respond_with_data(ATOM, content_type="application/atom+xml")
    proc = monitor(subprocess_env, site, "feeds", "add", httpserver.url_for("/blog/"))
    assert proc.returncode == 0, proc.stderr
    chosen = httpserver.url_for("/blog/feeds/atom")
    assert f"chose {chosen}, found through the page's <link rel=\"alternate\"> (Atom)" in proc.stdout
    assert [f["url"] for f in listed(subprocess_env, site)] == [chosen]


def test_a_broken_first_link_falls_through_to_the_next(
    httpserver: HTTPServer, site: Path, subprocess_env: dict[str, str]
) -> None:
    httpserver.expect_request("/").respond_with_data(
        page(
            '<link rel="alternate" type="application/rss+xml" href="/dead.xml">',
            '<link rel="alternate" type="application/rss+xml" href="/live.xml">',
        ),
        content_type="text/html",
    )
    httpserver.expect_request("/dead.xml").respond_with_data("nope", status=404)
    httpserver.expect_request("/live.xml").respond_with_data(FEED, content_type="application/rss+xml")
    proc = monitor(subprocess_env, site, "feeds", "add", httpserver.url_for("/"))
    assert proc.returncode == 0, proc.stderr
    assert [f["url"] for f in listed(subprocess_env, site)] == [httpserver.url_for("/live.xml")]


@pytest.mark.parametrize("path", ["/feed", "/rss.xml", "/atom.xml", "/feed.xml", "/index.xml"])
def test_without_links_the_usual_paths_are_tried_and_the_one_chosen_is_said(
    httpserver: HTTPServer, site: Path, subprocess_env: dict[str, str], path: str
) -> None:
    httpserver.expect_request("/").respond_with_data(page(), content_type="text/html")
    httpserver.expect_request(path).respond_with_data(FEED, content_type="application/rss+xml")
    # Every other path answers with the site's HTML 404 page, which must not be taken for a feed.
    httpserver.no_handler_status_code = 404
    proc = monitor(subprocess_env, site, "feeds", "add", httpserver.url_for("/"), "--full-text", "--category", "News")
    assert proc.returncode == 0, proc.stderr
    assert f"found through the usual path {path}" in proc.stdout
    [feed] = listed(subprocess_env, site)
    assert (feed["url"], feed["full_text"], feed["category"]) == (httpserver.url_for(path), True, "News")


def test_a_feed_url_is_added_as_it_is_without_a_note(
    httpserver: HTTPServer, site: Path, subprocess_env: dict[str, str]
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(FEED, content_type="application/rss+xml")
    proc = monitor(subprocess_env, site, "feeds", "add", httpserver.url_for("/feed.xml"))
    assert proc.returncode == 0 and "is not a feed" not in proc.stdout
    assert "Added" in proc.stdout
    assert [f["url"] for f in listed(subprocess_env, site)] == [httpserver.url_for("/feed.xml")]


def test_no_feed_anywhere_is_one_clear_error_and_nothing_is_added(
    httpserver: HTTPServer, site: Path, subprocess_env: dict[str, str]
) -> None:
    httpserver.expect_request("/").respond_with_data(page(), content_type="text/html")
    httpserver.no_handler_status_code = 404
    proc = monitor(subprocess_env, site, "feeds", "add", httpserver.url_for("/"))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("monitor: ") and "no feed was found" in lines[0]
    assert "/feed, /rss.xml, /atom.xml, /feed.xml, /index.xml" in lines[0]
    assert listed(subprocess_env, site) == []


def test_an_unreachable_url_is_added_as_given_with_a_note(site: Path, subprocess_env: dict[str, str]) -> None:
    proc = monitor(subprocess_env, site, "feeds", "add", "http://127.0.0.1:9/feed")  # port 9: nothing listens
    assert proc.returncode == 0
    assert "could not check the URL" in proc.stderr and "connection refused" in proc.stderr
    assert [f["url"] for f in listed(subprocess_env, site)] == ["http://127.0.0.1:9/feed"]


def test_feed_links_reads_base_href_and_ignores_other_rels() -> None:
    html = page(
        '<base href="https://cdn.example/root/">',
        '<link rel="alternate" type="text/html" href="/other-language">',
        '<link rel="alternate feed" type="application/rss+xml; charset=utf-8" href="rss" title="Main">',
        '<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">',
        '<link rel="alternate" type="application/rss+xml" href="rss">',
    )
    assert feed_links(html, "https://site.example/a/b") == [("https://cdn.example/root/rss", "RSS", "Main")]
