"""The whole poll, fetch to store, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from feedgen import rss, write_config
from monitor.config import load_config
from monitor.service import feed_status, open_store, poll_once
from storage import Store

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)

IPO = {"title": "OpenAI weighs an IPO", "link": "https://wire.example/ipo", "text": "Bankers say ChatGPT maker OpenAI could file for an initial public offering."}
OTHER = {"title": "A new phone", "link": "https://wire.example/phone", "text": "Nothing about the partnership here."}


def status_by_url(cfg) -> dict[str, dict]:
    with open_store(cfg, now=NOW) as store:
        return {r["url"]: r for r in feed_status(store)}


def test_poll_stores_and_tags_then_conditional_get_stores_nothing(httpserver: HTTPServer, tmp_path: Path) -> None:
    body = rss([IPO, OTHER])
    seen_conditional = []

    def handler(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"v1"':
            seen_conditional.append(True)
            return Response(status=304)
        return Response(body, headers={"ETag": '"v1"', "Content-Type": "application/rss+xml"})

    httpserver.expect_request("/feed.xml").respond_with_handler(handler)
    url = httpserver.url_for("/feed.xml")
    cfg = load_config(write_config(tmp_path, [url]))

    first = poll_once(cfg, now=NOW)
    assert (first.ok, first.new, first.flagged) == (1, 2, 1)
    second = poll_once(cfg, now=NOW + timedelta(minutes=30))
    assert (second.not_modified, second.new) == (1, 0)
    assert seen_conditional == [True]
    st = status_by_url(cfg)[url]
    assert (st["last_status"], st["articles"], st["error_count"]) == ("not_modified", 2, 0)
    with open_store(cfg, now=NOW) as store:
        row = store.article("https://wire.example/ipo")
    assert row["flagged"] and row["tags"] == ["ipo"]
    assert {m.rule for m in row["matches"]} == {"openai-ipo"}
    assert row["feed_name"] == "Test Wire"


def test_changed_entry_is_updated_and_retagged(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_ordered_request("/f").respond_with_data(rss([OTHER]), content_type="application/rss+xml")
    changed = dict(OTHER, title="A new phone, and OpenAI plans an IPO")
    httpserver.expect_ordered_request("/f").respond_with_data(rss([changed]), content_type="application/rss+xml")
    cfg = load_config(write_config(tmp_path, [httpserver.url_for("/f")]))
    poll_once(cfg, now=NOW)
    summary = poll_once(cfg, now=NOW + timedelta(hours=1))
    assert summary.feeds[0].updated == 1 and summary.new == 0
    with open_store(cfg, now=NOW) as store:
        row = store.article(OTHER["link"])
        assert row["title"] == changed["title"] and row["flagged"]
        assert store.counts()["articles"] == 1


def test_cross_feed_copy_is_linked_and_counted_for_both(httpserver: HTTPServer, tmp_path: Path) -> None:
    copy = dict(IPO, link="https://mirror.example/copied-story", guid="mirror-1")
    httpserver.expect_request("/a").respond_with_data(rss([IPO], title="A"), content_type="application/rss+xml")
    httpserver.expect_request("/b").respond_with_data(rss([copy], title="B"), content_type="application/rss+xml")
    cfg = load_config(write_config(tmp_path, [httpserver.url_for("/a")]))
    poll_once(cfg, now=NOW)
    cfg = load_config(write_config(tmp_path, [httpserver.url_for("/a"), httpserver.url_for("/b")]))
    summary = poll_once(cfg, now=NOW + timedelta(minutes=1))
    by_name = {f.name: f for f in summary.feeds}
    assert by_name["B"].linked == 1 and by_name["B"].new == 0
    st = status_by_url(cfg)
    assert st[httpserver.url_for("/a")]["articles"] == 1 and st[httpserver.url_for("/b")]["articles"] == 1
    with open_store(cfg, now=NOW) as store:
        assert store.counts()["articles"] == 1


def test_one_broken_feed_does_not_stop_the_others(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/good").respond_with_data(rss([IPO]), content_type="application/rss+xml")
    httpserver.expect_request("/broken").respond_with_data("oops", status=500)
    httpserver.expect_request("/html").respond_with_data(
        "<!doctype html><html><head><title>Home</title></head><body><p>Welcome</p></body></html>",
        content_type="text/html",
    )
    httpserver.expect_request("/gone").respond_with_data("", status=410)
    httpserver.expect_request("/busy").respond_with_data("slow down", status=429, headers={"Retry-After": "7200"})
    urls = {k: httpserver.url_for(f"/{k}") for k in ("good", "broken", "html", "gone", "busy")}
    cfg = load_config(write_config(tmp_path, list(urls.values())))
    summary = poll_once(cfg, now=NOW)
    assert summary.ok == 1 and summary.new == 1 and summary.failed == 4
    st = status_by_url(cfg)
    assert st[urls["good"]]["last_status"] == "ok"
    broken = st[urls["broken"]]
    assert (broken["last_status"], broken["error_count"]) == ("error", 1)
    assert "500" in broken["last_error"]
    assert broken["next_due"] > (NOW + timedelta(minutes=29)).isoformat()
    html = st[urls["html"]]
    assert html["last_status"] == "error" and "HTML" in html["last_error"]
    assert (st[urls["gone"]]["last_status"], st[urls["gone"]]["disabled"]) == ("gone", "gone")
    busy = st[urls["busy"]]
    assert (busy["last_status"], busy["error_count"]) == ("throttled", 0)
    assert busy["next_due"] == (NOW + timedelta(hours=2)).isoformat()
    # Due-only polling now skips all but nothing is due yet; the gone feed is never due.
    with open_store(cfg, now=NOW) as store:
        assert [f.url for f in store.feeds_due(NOW + timedelta(days=3))] != []
        assert urls["gone"] not in [f.url for f in store.feeds_due(NOW + timedelta(days=3))]


def test_permanent_redirect_updates_the_stored_url(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/old").respond_with_data("", status=301, headers={"Location": httpserver.url_for("/new")})
    httpserver.expect_request("/new").respond_with_data(rss([OTHER]), content_type="application/rss+xml")
    old = httpserver.url_for("/old")
    cfg = load_config(write_config(tmp_path, [old]))
    poll_once(cfg, now=NOW)
    st = status_by_url(cfg)
    assert list(st) == [httpserver.url_for("/new")]
    poll_once(cfg, now=NOW + timedelta(hours=1))  # the config still says /old: no second feed appears
    assert list(status_by_url(cfg)) == [httpserver.url_for("/new")]


def test_a_storage_failure_on_one_feed_leaves_it_as_before_and_others_go_on(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    httpserver.expect_request("/a").respond_with_data(rss([IPO], title="A"), content_type="application/rss+xml")
    httpserver.expect_request("/b").respond_with_data(rss([OTHER], title="B"), content_type="application/rss+xml")
    cfg = load_config(write_config(tmp_path, [httpserver.url_for("/a"), httpserver.url_for("/b")]))
    real = Store._apply_entry

    def fail_for_a(self: Store, feed, intent, *rest) -> None:  # type: ignore[no-untyped-def]
        if intent.article.link == IPO["link"]:
            raise sqlite3.OperationalError("database or disk is full")
        real(self, feed, intent, *rest)

    monkeypatch.setattr(Store, "_apply_entry", fail_for_a)
    summary = poll_once(cfg, now=NOW)
    statuses = {f.url: f.status for f in summary.feeds}
    assert statuses[httpserver.url_for("/a")] == "storage_error"
    assert statuses[httpserver.url_for("/b")] == "ok"
    st = status_by_url(cfg)
    assert st[httpserver.url_for("/a")]["last_status"] == "new"  # untouched by the failed poll
    assert st[httpserver.url_for("/a")]["last_fetched"] is None
    assert st[httpserver.url_for("/b")]["articles"] == 1
    monkeypatch.undo()
    # The next poll stores the story that could not be written before.
    assert poll_once(cfg, now=NOW + timedelta(hours=1)).new == 1


def test_a_stop_request_skips_the_feeds_not_yet_written(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/a").respond_with_data(rss([IPO]), content_type="application/rss+xml")
    cfg = load_config(write_config(tmp_path, [httpserver.url_for("/a")]))
    stop = threading.Event()
    stop.set()
    summary = poll_once(cfg, now=NOW, stop=stop)
    assert summary.interrupted and summary.feeds == []
    with open_store(cfg, now=NOW) as store:
        assert store.counts()["articles"] == 0


def test_a_big_round_parses_in_worker_processes_with_the_same_result(httpserver: HTTPServer, tmp_path: Path) -> None:
    from monitor.fetch import Fetcher
    from monitor.pipeline import Pipeline
    from monitor.service import fetch_settings
    from rules import load_rules

    items = [dict(IPO, link=f"https://wire.example/ipo-{n}", guid=f"g{n}", title=f"OpenAI weighs an IPO, take {n}") for n in range(10)]
    for n in range(10):
        httpserver.expect_request(f"/f{n}").respond_with_data(rss([items[n], dict(OTHER, link=f"https://o.example/{n}", guid=f"o{n}", title=f"Phone {n}")], title=f"F{n}"), content_type="application/rss+xml")
    urls = [httpserver.url_for(f"/f{n}") for n in range(10)]
    results = {}
    for processes in (0, 2):
        (tmp_path / str(processes)).mkdir()
        cfg = load_config(write_config(tmp_path / str(processes), urls))
        with open_store(cfg, now=NOW) as store, Fetcher(fetch_settings(cfg)) as fetcher:
            pipeline = Pipeline(store, fetcher, load_rules(cfg.rule_files), processes=processes)
            summary = pipeline.poll(store.list_feeds(), now=NOW)
            assert (summary.ok, summary.new, summary.flagged) == (10, 20, 10)
            assert pipeline.parsed_in_processes == (10 if processes else 0)
            results[processes] = sorted(
                (r["url"], r["flagged"], tuple(r["tags"]), r["score"], tuple(r["matches"])) for r in store.iter_articles()
            )
    assert results[0] == results[2]


def test_a_kept_parser_pool_is_reused_across_rounds_and_rebuilt_for_new_rules(tmp_path: Path) -> None:
    from monitor.pipeline import ParserPool
    from rules import load_rules

    cfg = load_config(write_config(tmp_path, []))
    first = load_rules(cfg.rule_files)
    (tmp_path / "rules.toml").write_text((tmp_path / "rules.toml").read_text().replace("weight = 3.0", "weight = 5.0"))
    second = load_rules(cfg.rule_files)
    assert first.version != second.version
    with ParserPool(1) as pool:
        a = pool.executor(first)
        assert pool.executor(first) is a
        b = pool.executor(second)
        assert b is not a
        # The workers really hold the new rules.
        from monitor.pipeline import _worker_parse

        parsed = b.submit(_worker_parse, rss([IPO]), "https://wire.example/", None, "W", NOW).result()
        assert parsed.items[0][1].score == second.evaluate({"title": IPO["title"], "text": IPO["text"]}).score


def test_the_same_story_from_two_outlets_shares_a_story_and_a_different_one_does_not(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    a_items = [
        {"title": "Microsoft and OpenAI sign a new partnership agreement", "link": "https://a.example/deal", "guid": "a1",
         "text": "Microsoft and OpenAI signed a new agreement on Tuesday that ends Azure's exclusive hold on OpenAI's "
                 "computing, while Microsoft keeps its stake and access to future models until 2032."},
        {"title": "Chipmaker opens a plant in Arizona", "link": "https://a.example/chips", "guid": "a2",
         "text": "A chipmaker opened a new factory in Arizona on Tuesday, adding two thousand jobs."},
    ]
    b_items = [
        {"title": "OpenAI and Microsoft agree new partnership terms", "link": "https://b.example/openai-msft", "guid": "b1",
         "text": "OpenAI and Microsoft have agreed new partnership terms: Azure is no longer OpenAI's exclusive cloud, "
                 "and Microsoft keeps its stake and its access to future models until 2032, the companies said."},
    ]
    httpserver.expect_request("/a").respond_with_data(rss(a_items, title="A"), content_type="application/rss+xml")
    httpserver.expect_request("/b").respond_with_data(rss(b_items, title="B"), content_type="application/rss+xml")
    cfg = load_config(write_config(tmp_path, [httpserver.url_for("/a"), httpserver.url_for("/b")]))
    poll_once(cfg, now=NOW)
    with open_store(cfg, now=NOW) as store:
        rows = {r["url"]: r for r in store.iter_articles()}
    assert rows["https://a.example/deal"]["story_id"] == rows["https://b.example/openai-msft"]["story_id"]
    assert rows["https://a.example/chips"]["story_id"] != rows["https://a.example/deal"]["story_id"]
    assert all(r["story_id"] is not None and r["signature"] for r in rows.values())


def test_stories_can_be_turned_off(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/a").respond_with_data(rss([IPO, OTHER]), content_type="application/rss+xml")
    cfg = load_config(write_config(tmp_path, [httpserver.url_for("/a")], "[stories]\nenabled = false\n"))
    assert poll_once(cfg, now=NOW).new == 2
    with open_store(cfg, now=NOW) as store:
        assert {r["story_id"] for r in store.iter_articles()} == {None}
        assert store.db.execute("SELECT count(*) FROM story_bands").fetchone()[0] == 0
