"""Stories and trends end to end: grouping while polling, digest rendering, CLI, alerts."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest
from feedgen import rss, write_config
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.config import load_config
from monitor.service import (
    check_alerts,
    day_items,
    make_digest,
    open_store,
    poll_once,
    select_day,
    stories_of_day,
    trends,
)

DAY = date(2026, 11, 19)
NOW = datetime(2026, 11, 19, 20, 0, tzinfo=timezone.utc)


def at(day: date, hour: int) -> str:
    return format_datetime(datetime(day.year, day.month, day.day, hour, 0, tzinfo=timezone.utc))


# The same event told by three outlets in their own words, and one unrelated flagged story.
DEAL_A = {"title": "Microsoft and OpenAI sign a new partnership agreement", "link": "https://a.example/deal", "guid": "a1",
          "date": at(DAY, 9),
          "text": "Microsoft and OpenAI signed a new agreement that ends Azure's exclusive hold on OpenAI's computing, "
                  "while Microsoft keeps its stake and access to future models until 2032."}
DEAL_B = {"title": "OpenAI and Microsoft agree new partnership terms", "link": "https://b.example/terms", "guid": "b1",
          "date": at(DAY, 10),
          "text": "OpenAI and Microsoft have agreed new partnership terms: Azure is no longer OpenAI's exclusive cloud, "
                  "and Microsoft keeps its stake and its access to future models until 2032."}
DEAL_C = {"title": "Microsoft, OpenAI rewrite partnership; Azure exclusivity ends", "link": "https://c.example/rewrite",
          "guid": "c1", "date": at(DAY, 11),
          "text": "Microsoft and OpenAI rewrote their partnership agreement. Azure exclusivity ends, Microsoft keeps "
                  "its stake and access to future models until 2032."}
IPO = {"title": "OpenAI weighs an IPO next year", "link": "https://a.example/ipo", "guid": "a2", "date": at(DAY, 12),
       "text": "OpenAI is weighing an initial public offering as soon as next year, people briefed on the plans said."}


def feeds(httpserver: HTTPServer) -> list[str]:
    httpserver.expect_request("/a").respond_with_data(rss([DEAL_A, IPO], title="Outlet A"), content_type="application/rss+xml")
    httpserver.expect_request("/b").respond_with_data(rss([DEAL_B], title="Outlet B"), content_type="application/rss+xml")
    httpserver.expect_request("/c").respond_with_data(rss([DEAL_C], title="Outlet C"), content_type="application/rss+xml")
    return [httpserver.url_for("/a"), httpserver.url_for("/b"), httpserver.url_for("/c")]


EXTRA_RULE = '''
[[rules]]
name = "partnership-terms"
tags = ["partnership"]
query = '(Microsoft AND OpenAI) AND (partnership OR agreement)'
weight = 2.0
source = "test"
'''


def config(tmp_path: Path, urls: list[str], extra: str = ""):  # type: ignore[no-untyped-def]
    path = write_config(tmp_path, urls, extra)
    (tmp_path / "rules.toml").write_text((tmp_path / "rules.toml").read_text() + EXTRA_RULE)
    return load_config(path)


def test_digest_shows_one_entry_per_story_with_its_other_outlets(httpserver: HTTPServer, tmp_path: Path) -> None:
    cfg = config(tmp_path, feeds(httpserver))
    poll_once(cfg, now=NOW)
    make_digest(cfg, DAY, now=NOW)
    doc = json.loads((cfg.digest_dir / "2026-11-19.json").read_text())
    urls = [i["url"] for i in doc["items"]]
    deal = [i for i in doc["items"] if "deal" in i["url"] or "terms" in i["url"] or "rewrite" in i["url"]]
    assert len(deal) == 1, urls  # three outlets, one entry
    assert sorted(s["feed"] for s in deal[0]["also"]) == sorted({"Outlet A", "Outlet B", "Outlet C"} - {deal[0]["feed"]})
    assert IPO["link"] in urls
    md = (cfg.digest_dir / "2026-11-19.md").read_text()
    assert "Also covered by:" in md and "Outlet B" in md
    html = (cfg.digest_dir / "2026-11-19.html").read_text()
    assert "also covered by" in html and "<svg" in html  # trend sparklines are inline SVG


def test_a_story_from_yesterday_still_growing_is_developing_not_new(httpserver: HTTPServer, tmp_path: Path) -> None:
    yesterday = dict(DEAL_A, date=at(DAY - timedelta(days=1), 15))
    httpserver.expect_request("/a").respond_with_data(rss([yesterday], title="Outlet A"), content_type="application/rss+xml")
    httpserver.expect_request("/b").respond_with_data(rss([DEAL_B], title="Outlet B"), content_type="application/rss+xml")
    cfg = config(tmp_path, [httpserver.url_for("/a"), httpserver.url_for("/b")])
    poll_once(cfg, now=NOW)
    make_digest(cfg, DAY, now=NOW)
    doc = json.loads((cfg.digest_dir / "2026-11-19.json").read_text())
    assert len(doc["items"]) == 1
    item = doc["items"][0]
    assert item["url"] == DEAL_B["link"] and item["developing"] is True
    assert [s["feed"] for s in item["also"]] == ["Outlet A"]
    assert "(developing)" in (cfg.digest_dir / "2026-11-19.md").read_text()


def test_stories_and_trends_commands(httpserver: HTTPServer, tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    cfg = config(tmp_path, feeds(httpserver))
    poll_once(cfg, now=NOW)

    def monitor(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "monitor", *args], cwd=tmp_path, env=subprocess_env,
                              capture_output=True, text=True, timeout=60)

    proc = monitor("stories", "--date", "2026-11-19", "--json")
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert len(found) == 2
    for s in found:
        assert {"id", "title", "url", "tags", "members", "first_seen"} <= set(s)
        for m in s["members"]:
            assert {"url", "feed", "title", "published"} <= set(m)
    deal = next(s for s in found if len(s["members"]) == 3)
    assert {m["feed"] for m in deal["members"]} == {"Outlet A", "Outlet B", "Outlet C"}
    assert "partnership" in deal["tags"]
    text = monitor("stories", "--date", "2026-11-19")
    assert "also covered by:" in text.stdout

    proc = monitor("trends", "--days", "7", "--date", "2026-11-19", "--json")
    data = json.loads(proc.stdout)
    rows = {r["tag"]: r for r in data["articles"]["tags"]}
    assert rows["partnership"]["counts"][-1] == 3 and len(rows["partnership"]["counts"]) == 7
    stories_rows = {r["tag"]: r for r in data["stories"]["tags"]}
    assert stories_rows["partnership"]["counts"][-1] == 1  # three articles, one story
    text = monitor("trends", "--days", "7", "--date", "2026-11-19")
    assert "partnership" in text.stdout and any(ch in text.stdout for ch in "▁▂▃▄▅▆▇█")


def test_spike_needs_history_and_a_clear_jump(httpserver: HTTPServer, tmp_path: Path) -> None:
    cfg = config(tmp_path, feeds(httpserver), "[trends]\nmin_count = 3\n")
    # Monitoring began long ago, with quiet days since: today's 3 partnership articles are a spike.
    with open_store(cfg, now=NOW - timedelta(days=30)) as store:
        store.add_feed("http://127.0.0.1:9/old", now=NOW - timedelta(days=30))
    poll_once(cfg, now=NOW)
    with open_store(cfg, now=NOW) as store:
        articles, _ = trends(cfg, store, DAY)
    assert "partnership" in articles.spikes() and "ipo" not in articles.spikes()  # 1 IPO article < min_count


def test_alerts_fire_once_per_story(httpserver: HTTPServer, tmp_path: Path) -> None:
    posts: list[dict] = []

    def hook(request: Request) -> Response:
        posts.append(json.loads(request.data))
        return Response("ok")

    httpserver.expect_request("/hook", method="POST").respond_with_handler(hook)
    urls = feeds(httpserver)
    cfg = config(tmp_path, urls, f'[alerts]\nhigh_score = 4.0\n[digest.webhook]\nurl = "{httpserver.url_for("/hook")}"\n')
    poll_once(cfg, now=NOW)
    first = check_alerts(cfg, now=NOW)
    assert [a.kind for a in first] and {p["alert"]["kind"] for p in posts} == {"story"}
    assert IPO["link"] in {p["alert"]["url"] for p in posts}
    sent = len(posts)
    assert sent == len({a.story_id for a in first})
    assert check_alerts(cfg, now=NOW + timedelta(minutes=1)) == [] and len(posts) == sent


def test_the_digest_and_the_stories_listing_rank_with_one_formula(httpserver: HTTPServer, tmp_path: Path) -> None:
    """What the web app calls for a day: select_day and stories_of_day, on a real store."""
    cfg = config(tmp_path, feeds(httpserver))
    poll_once(cfg, now=NOW)
    with open_store(cfg, now=NOW) as store:
        day = select_day(cfg, store, DAY, now=NOW)
        listed = stories_of_day(cfg, store, DAY)
        legacy = day_items(cfg, store, DAY)  # the old name keeps working
    by_story = {i.story_id: i for i in day.items}
    assert {i.id for i in legacy} == {i.id for i in day.items}
    assert len(listed) == 2 and {s.id for s in listed} == set(by_story)
    for story in listed:
        item = by_story[story.id]
        # The same lead, the same score (lead + coverage bonus) in both places.
        assert (item.url, item.score) == (story.url, story.score)
    deal = next(s for s in listed if s.outlets == 3)
    assert deal.score == pytest.approx(by_story[deal.id].score) and deal.score > max(
        m.score for m in store_scores(cfg, deal.id)
    )
    assert [s.id for s in listed] == [s.id for s in sorted(listed, key=lambda s: (-s.score, s.lead_published, s.lead_id))]


def store_scores(cfg, story_id: int):  # type: ignore[no-untyped-def]
    with open_store(cfg, now=NOW) as store:
        return store.story_members([story_id])
