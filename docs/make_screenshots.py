"""Make the web app screenshots in docs/screenshots/ from a fixture database.

    .venv/bin/python docs/make_screenshots.py

Builds a database by polling made-up feeds on a local HTTP server (the
tests' helpers, our own words), serves the app on 127.0.0.1 and has the
system Chromium photograph the main pages. Nothing leaves the machine.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import uvicorn  # noqa: E402
import web_helpers as wh  # noqa: E402
from feedgen import rss  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from pytest_httpserver import HTTPServer  # noqa: E402

from monitor.config import load_config  # noqa: E402
from monitor.service import poll_once  # noqa: E402
from monitor.web.app import create_app  # noqa: E402
from storage import Store  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def dated(item: dict[str, str], days_ago: int, hour: int = 9) -> dict[str, str]:
    at = datetime(2026, 11, 19, hour, 0, tzinfo=timezone.utc) - timedelta(days=days_ago)
    return {**item, "date": format_datetime(at), "link": item["link"] + f"-{days_ago}"}


def history() -> list[dict[str, str]]:
    """Weeks of made-up coverage, so the timeline has a shape."""
    out = []
    for week in range(1, 12):
        for n in range(week % 4 + 1):
            out.append(dated({"title": f"Azure stays exclusive for OpenAI workloads, report {week}.{n}",
                              "link": "https://wire.example/azure-history",
                              "text": f"Week {week}: Microsoft said Azure remains the exclusive cloud for OpenAI; "
                                      f"item {n} of the week's coverage, with its own detail number {week * 10 + n}."},
                             week * 7 + n))
    return out


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="monitor-shots-"))
    http = HTTPServer()
    http.start()
    try:
        config = load_config(wh.build(http, tmp, wire=[wh.IPO, wh.AZURE, wh.SOFA, wh.DEBUT, wh.WEATHER]))
        http.expect_request("/history").respond_with_data(rss(history(), title="Cloud Ledger"),
                                                          content_type="application/rss+xml")
        with Store(config.storage_path) as store:
            store.add_feed(http.url_for("/history"), now=wh.NOW, name="Cloud Ledger")
        poll_once(config, feed_urls=[http.url_for("/history")], now=wh.NOW)
        with Store(config.storage_path) as store:
            for link, relevant in ((wh.IPO["link"], True), (wh.AZURE["link"], True), (wh.SOFA["link"], False),
                                   (wh.DEBUT["link"], True), (wh.WEATHER["link"], False)):
                a = store.article(link)
                store.set_label(a["id"], user="ana", relevant=relevant, tags=["ipo"] if "debut" in link else None, now=wh.NOW)
            ipo_id = store.article(wh.IPO["link"])["id"]
        server = uvicorn.Server(uvicorn.Config(create_app(config, clock=lambda: wh.NOW), host="127.0.0.1", port=0,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        pages = {"day": f"/day/{wh.DAY}", "article": f"/article/{ipo_id}", "search": "/search?q=OpenAI",
                 "timeline": "/timeline?tag=azure&weeks=13", "eval": "/eval", "suggestions": "/suggestions",
                 "feeds": "/feeds", "rules": "/rules"}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                        args=["--no-sandbox", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            for name, path in pages.items():
                page.goto(base + path)
                page.screenshot(path=str(OUT / f"{name}.png"), full_page=name in ("day", "article", "timeline", "suggestions"))
                print(f"wrote {OUT / (name + '.png')}")
            browser.close()
        server.should_exit = True
        thread.join(timeout=10)
    finally:
        http.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
