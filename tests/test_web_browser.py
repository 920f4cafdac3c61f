"""The web app in a real browser: Playwright driving the system Chromium against a real uvicorn on 127.0.0.1.

Reading a day, labeling an item and seeing the eval figures change,
applying a suggestion, searching, and the digest tests' 30 XSS payloads
through every page: no dialog opens, no script element or event handler
attribute reaches the DOM, and the browser requests nothing from anywhere
but the app itself.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import web_helpers as wh
from pytest_httpserver import HTTPServer
from test_html_safety import TEXT_PAYLOADS

from monitor.config import load_config
from storage import Store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="the system Chromium is not installed (apt-get install chromium)"),
]


class Served:
    def __init__(self, config: Any):
        import uvicorn

        from monitor.web.app import create_app

        self.config = config
        self.server = uvicorn.Server(uvicorn.Config(create_app(config, clock=lambda: wh.NOW), host="127.0.0.1",
                                                    port=0, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        for _ in range(500):  # waiting for the socket, not timing anything
            if self.server.started:
                break
            time.sleep(0.01)
        assert self.server.started, "uvicorn did not start"
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--no-first-run", "--disable-sync",
                  "--disable-component-update", "--disable-default-apps"],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    pg = context.new_page()
    pg.dialogs = []  # type: ignore[attr-defined]
    pg.remote = []  # type: ignore[attr-defined]
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))

    def route(r: Any) -> None:
        if r.request.url.startswith("http://127.0.0.1:"):
            r.continue_()
        else:
            pg.remote.append(r.request.url)
            r.abort()

    pg.route("**/*", route)
    yield pg
    context.close()


@pytest.fixture
def app(httpserver: HTTPServer, tmp_path: Path) -> Iterator[Served]:
    served = Served(load_config(wh.build(httpserver, tmp_path)))
    yield served
    served.stop()


def ids_of(config: Any) -> dict[str, int]:
    with Store(config.storage_path) as store:
        return {r["title"]: r["id"] for r in store.iter_articles()}


def test_reading_a_day_and_following_an_item_to_why_it_was_flagged(app: Served, page: Any) -> None:
    page.goto(f"{app.base}/day/{wh.DAY}")
    titles = page.locator("li.item .title").all_inner_texts()
    assert [t.split("\n")[0].strip() for t in titles] == [
        "Microsoft keeps Azure exclusive for OpenAI", "Azure sofas in an exclusive furniture sale", "OpenAI weighs an IPO",
    ]
    assert page.locator("h2", has_text="Trends").count() == 1
    page.locator("#item-%d" % ids_of(app.config)["OpenAI weighs an IPO"]).get_by_role("link", name="why").click()
    assert page.locator("h1").inner_text() == "OpenAI weighs an IPO"
    assert "openai-ipo" in page.locator("table.matches").inner_text()
    assert page.locator("h1 mark").all_inner_texts() == ["OpenAI", "IPO"]
    assert page.dialogs == [] and page.remote == []


def test_labeling_an_item_changes_the_eval_figures(app: Served, page: Any) -> None:
    ids = ids_of(app.config)
    page.goto(f"{app.base}/day/{wh.DAY}")
    page.locator(f"#item-{ids['OpenAI weighs an IPO']}").get_by_role("button", name="relevant", exact=True).click()
    page.locator(f"#item-{ids['Azure sofas in an exclusive furniture sale']}").get_by_role(
        "button", name="relevant", exact=True).click()
    assert "labeled relevant" in page.locator(f"#item-{ids['Azure sofas in an exclusive furniture sale']}").inner_text()
    page.goto(f"{app.base}/eval")
    assert page.locator("b.precision").inner_text() == "1.000"
    page.goto(f"{app.base}/day/{wh.DAY}")
    page.locator(f"#item-{ids['Azure sofas in an exclusive furniture sale']}").get_by_role("button", name="not relevant").click()
    page.goto(f"{app.base}/eval")
    assert page.locator("b.precision").inner_text() == "0.500"
    assert "Azure sofas" in page.locator("ul.misses").first.inner_text()


def test_applying_a_suggestion_from_the_browser(app: Served, page: Any) -> None:
    ids = ids_of(app.config)
    page.goto(f"{app.base}/day/{wh.DAY}")
    for title, verdict in (("OpenAI weighs an IPO", "relevant"), ("Microsoft keeps Azure exclusive for OpenAI", "relevant"),
                           ("Azure sofas in an exclusive furniture sale", "not relevant")):
        page.locator(f"#item-{ids[title]}").get_by_role("button", name=verdict, exact=True).click()
    page.goto(f"{app.base}/suggestions")
    first = page.locator("li.suggestion").first
    what = first.locator("b").first.inner_text()
    assert what.startswith("add NOT title:") and what.endswith("to rule azure-exclusive")
    first.get_by_role("button", name="apply").click()
    assert page.locator("p.done").inner_text().startswith(f"Applied: {what}")
    rules = Path(app.config.rule_files[0]).read_text()
    assert "NOT title:" in rules and "# Web app test rules." in rules
    page.goto(f"{app.base}/eval")
    assert page.locator("b.precision").inner_text() == "1.000"


def test_search_with_filters_in_the_browser(app: Served, page: Any) -> None:
    page.goto(f"{app.base}/search")
    page.fill("input[name=q]", "OpenAI")
    page.select_option("select[name=tag]", "ipo")
    page.get_by_role("button", name="Search").click()
    assert page.locator("p.total").inner_text().startswith("1–2 of 2 articles")
    assert page.locator("ol.results mark").first.inner_text() == "OpenAI"
    page.select_option("select[name=flagged]", "no")
    page.select_option("select[name=tag]", "")
    page.get_by_role("button", name="Search").click()
    assert page.locator("p.total").inner_text().startswith("1–1 of 1")
    assert "stock market debut" in page.locator("ol.results").inner_text()


# ------------------------------------------------------------------ XSS


def hostile_database(httpserver: HTTPServer, tmp_path: Path) -> Any:
    """One flagged article per payload; its title, text, link and feed name carry the payload as stored text."""
    # Words of their own per item, so that no two items group into one story (the day shows one item per story).
    items = [{"title": f"Azure exclusive {' '.join(f'q{i}t{j}' for j in range(6))}", "link": f"https://wire.example/x{i}",
              "text": "Azure exclusive deal. " + " ".join(f"w{i}x{j}" for j in range(30))} for i in range(len(TEXT_PAYLOADS))]
    config = load_config(wh.build(httpserver, tmp_path, wire=items, other=[wh.IPO_B]))
    with Store(config.storage_path) as store:
        # Straight into the stored fields: whatever a feed manages to get past cleaning, at its worst.
        for i, payload in enumerate(TEXT_PAYLOADS):
            a = store.article(f"https://wire.example/x{i}")
            store.db.execute(
                "UPDATE articles SET title = ?, summary_text = ?, link = ?, author = ? WHERE id = ?",
                (f"Azure exclusive {payload}", f"Azure exclusive deal. {payload}",
                 "javascript:alert(1)" if i % 3 == 0 else a["link"], payload, a["id"]),
            )
        store.db.execute("UPDATE feeds SET name = ?, last_error = ?, failing_since = ?",
                         (TEXT_PAYLOADS[0], TEXT_PAYLOADS[2], wh.NOW.isoformat()))
        store.db.conn.commit()
        for i, a in enumerate(store.iter_articles()):
            store.set_label(a["id"], user="ana", relevant=i % 2 == 0, tags=None, now=wh.NOW)
    return config


def assert_clean(page: Any, where: str) -> None:
    injected = page.evaluate(
        """() => ({
            scripts: document.querySelectorAll('script').length,
            frames: document.querySelectorAll('iframe, object, embed, base, meta[http-equiv], link[rel=stylesheet]:not([href="/static/style.css"]), style').length,
            handlers: [...document.querySelectorAll('*')].filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length,
            jslinks: [...document.querySelectorAll('a[href]')].filter(a => !/^(https?:|\\/|#|\\?)/i.test(a.getAttribute('href'))).length,
            imgs: document.querySelectorAll('img').length,
            forms: [...document.querySelectorAll('form')].filter(f => f.getAttribute('action') && !f.getAttribute('action').startsWith('/')).length,
        })"""
    )
    assert injected == {"scripts": 0, "frames": 0, "handlers": 0, "jslinks": 0, "imgs": 0, "forms": 0}, where
    assert page.dialogs == [], where
    assert page.remote == [], where


def test_xss_payloads_stay_text_on_every_page(httpserver: HTTPServer, tmp_path: Path, page: Any) -> None:
    config = hostile_database(httpserver, tmp_path)
    served = Served(config)
    try:
        with Store(config.storage_path) as store:
            articles = list(store.iter_articles())
            stories = sorted({a["story_id"] for a in articles if a["story_id"]})
        urls = [f"/day/{wh.DAY}", "/search?q=Azure", "/search?q=Azure&page=2", "/search?q=alert", "/timeline?tag=azure",
                "/timeline?tag=", "/feeds", "/rules", "/eval", "/suggestions"]
        urls += [f"/article/{a['id']}" for a in articles] + [f"/story/{s}" for s in stories]
        # What the visitor types comes back too: in the search box, the filters and an error message.
        for payload in TEXT_PAYLOADS:
            q = quote(payload, safe="")
            urls += [f"/search?q={q}&tag={q}", f"/day/{q}", f"/timeline?tag={q}"]
        for url in urls:
            page.goto(served.base + url)
            assert_clean(page, url)
        # The payloads are there, shown as the text they are.
        page.goto(f"{served.base}/day/{wh.DAY}")
        body = page.inner_text("body")
        for payload in TEXT_PAYLOADS:
            assert f"Azure exclusive {payload}" in body, payload
        page.goto(f"{served.base}/article/{articles[0]['id']}")
        assert page.locator("h1").inner_text() == f"Azure exclusive {TEXT_PAYLOADS[0]}"
        # Trying a rule edit echoes the submitted text back: also inert.
        page.goto(f"{served.base}/rules")
        page.fill("input[name=query]", TEXT_PAYLOADS[0])
        page.get_by_role("button", name="Try").click()
        assert_clean(page, "/rules/try")
    finally:
        served.stop()
