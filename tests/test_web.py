"""The web app over HTTP (Starlette's TestClient on the real app, a real database built by a real poll).

Every page renders from the stored data; every form changes what it says
and nothing else; safety headers, CSRF and the bind/auth rules hold.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest
import web_helpers as wh
from pytest_httpserver import HTTPServer
from starlette.testclient import TestClient

from monitor.config import load_config
from monitor.web.app import CSP, create_app
from storage import Store

LOCAL = "http://127.0.0.1:8470"


@pytest.fixture
def site(httpserver: HTTPServer, tmp_path: Path) -> tuple[TestClient, object, dict[str, int]]:
    config = load_config(wh.build(httpserver, tmp_path))
    client = TestClient(create_app(config, clock=lambda: wh.NOW), base_url=LOCAL)
    with Store(config.storage_path) as store:
        ids = {r["title"]: r["id"] for r in store.iter_articles()}
    return client, config, ids


def csrf_of(client: TestClient) -> str:
    page = client.get("/feeds").text
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m, "every page with a form carries the CSRF token"
    return m.group(1)


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def label(client: TestClient, article: int, verdict: str, tags: list[str] | None = None) -> None:
    r = client.post("/label", data={"csrf": csrf_of(client), "article": article, "verdict": verdict,
                                    "tags": tags or [], "next": "/eval"}, follow_redirects=False)
    assert r.status_code == 303, r.text


def test_day_page_shows_the_digest_selection_with_stories_trends_and_label_forms(site) -> None:
    client, _config, ids = site
    r = client.get(f"/day/{wh.DAY}")
    assert r.status_code == 200
    body = text(r.text)
    # One item per story: the IPO story carried by two outlets shows once, with the other outlet under it.
    assert body.count("OpenAI weighs an IPO") == 1 and "also covered by: Other Post" in body
    assert "Microsoft keeps Azure exclusive for OpenAI" in body
    assert "Mild weather" not in body and "stock market debut" not in body  # not flagged: not in the digest
    # Each item under its strongest tag (a tie goes to the earlier tag in [digest] tag_order).
    assert "partnership (2) Microsoft keeps Azure" in body and "ipo (1) OpenAI weighs an IPO" in body
    assert "Trends, last 14 days" in body
    assert r.text.count('action="/label"') == 3
    # Highlighted matched terms, escaped text around them.
    assert "<mark>IPO</mark>" in r.text


def test_every_page_renders_with_the_safety_headers(site) -> None:
    client, _config, ids = site
    pages = ["/", f"/day/{wh.DAY}", f"/article/{ids['OpenAI weighs an IPO']}", "/search?q=OpenAI", "/search",
             "/timeline", "/timeline?tag=&weeks=8", "/feeds", "/rules", "/eval", "/suggestions", "/static/style.css"]
    with Store(site[1].storage_path) as store:
        sid = store.article(ids["OpenAI weighs an IPO"])["story_id"]
    pages.append(f"/story/{sid}")
    for url in pages:
        r = client.get(url)
        assert r.status_code == 200, url
        assert r.headers["content-security-policy"] == CSP
        assert "script-src" not in CSP and "'unsafe-inline'" not in CSP
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "<script" not in r.text.lower(), url


def test_article_page_lists_every_match_with_weight_term_field_and_span(site) -> None:
    client, _config, ids = site
    r = client.get(f"/article/{ids['Microsoft keeps Azure exclusive for OpenAI']}")
    body = text(r.text)
    assert "azure-exclusive 2 Azure title 16–21 Azure" in body
    assert "azure-exclusive 2 yes 3" in body  # weight 2, matched in the title: x1.5 = the stored score 3
    assert "exclusiv* title" in body and "exclusiv* text" in body
    assert "flagged" in body and "azure" in body and "partnership" in body and "Test Wire" in body
    assert "<mark>Azure</mark>" in r.text
    assert client.get("/article/9999").status_code == 404


def test_story_page_lists_every_outlet(site) -> None:
    client, config, ids = site
    with Store(config.storage_path) as store:
        sid = store.article(ids["OpenAI weighs an IPO"])["story_id"]
    body = text(client.get(f"/story/{sid}").text)
    assert "Test Wire" in body and "Other Post" in body and "from 2 outlets" in body
    page = client.get(f"/story/{sid}").text
    assert page.count('action="/label"') == len(set(re.findall(r'name="article" value="(\d+)"', page))) >= 1
    assert client.get("/story/9999").status_code == 404


def test_search_filters_pages_and_counts(site) -> None:
    client, config, ids = site
    body = text(client.get("/search?q=OpenAI").text)
    assert "1–4 of 4 articles" in body  # two IPO copies, Azure, the debut
    assert "1–2 of 2" in text(client.get("/search?q=OpenAI&tag=ipo").text)
    assert "1–1 of 1" in text(client.get("/search?q=OpenAI&flagged=no").text)
    assert "0 of 0" in text(client.get("/search?q=OpenAI&from=2026-11-20").text)
    with Store(config.storage_path) as store:
        other = [f for f in store.list_feeds() if f.url.endswith("/other")][0]
    assert "1–1 of 1" in text(client.get(f"/search?q=OpenAI&feed={other.id}").text)
    # Paging: 6 articles, 20 a page -> one page; the pager says so.
    everything = text(client.get("/search").text)
    assert "1–6 of 6" in everything and "page 1 of 1" in everything
    # Bad FTS syntax is searched literally, not an error.
    assert client.get('/search?q="unclosed').status_code == 200
    assert "<mark>OpenAI</mark>" in client.get("/search?q=OpenAI").text


def test_search_pages_past_the_first(site, monkeypatch: pytest.MonkeyPatch) -> None:
    client, _config, _ids = site
    monkeypatch.setattr("monitor.web.app.PAGE_SIZE", 4)
    first = client.get("/search")
    assert "1–4 of 6" in text(first.text) and "page 1 of 2" in text(first.text)
    nxt = re.search(r'href="([^"]+)" rel="next"', first.text).group(1).replace("&amp;", "&")
    second = text(client.get(nxt).text)
    assert "5–6 of 6" in second and "page 2 of 2" in second


def test_timeline_draws_weekly_volume_and_the_stories_that_mattered(site) -> None:
    client, _config, _ids = site
    r = client.get("/timeline?tag=azure&weeks=8")
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in r.text
    assert "week of 2026-11-16: 2" in r.text  # the azure articles of the 19th
    body = text(r.text)
    assert "Microsoft keeps Azure exclusive for OpenAI" in body and "OpenAI weighs" not in body
    assert "2 outlets" in text(client.get("/timeline?tag=ipo").text)


def test_labels_change_the_eval_figures(site) -> None:
    client, _config, ids = site
    assert "No labels yet" in text(client.get("/eval").text)
    label(client, ids["OpenAI weighs an IPO"], "relevant")
    label(client, ids["Azure sofas in an exclusive furniture sale"], "relevant")
    before = text(client.get("/eval").text)
    assert "precision 1.000" in before and "2 labeled articles" in before
    label(client, ids["Azure sofas in an exclusive furniture sale"], "not_relevant")
    label(client, ids["OpenAI readies stock market debut"], "tags", ["ipo"])
    after = text(client.get("/eval").text)
    assert "3 labeled articles" in after and "precision 0.500" in after and "recall 0.500" in after
    assert "False positives (1) Azure sofas" in after and "False negatives (1) OpenAI readies" in after


def test_label_post_needs_the_csrf_token(site) -> None:
    client, config, ids = site
    csrf_of(client)
    r = client.post("/label", data={"csrf": "forged", "article": ids["OpenAI weighs an IPO"], "verdict": "relevant"})
    assert r.status_code == 403
    fresh = TestClient(client.app, base_url=LOCAL)  # no cookie at all
    assert fresh.post("/label", data={"csrf": "x", "article": 1, "verdict": "relevant"}).status_code == 403
    with Store(config.storage_path) as store:
        assert store.labels() == []


def test_label_redirect_stays_on_this_site(site) -> None:
    client, _config, ids = site
    r = client.post("/label", data={"csrf": csrf_of(client), "article": ids["OpenAI weighs an IPO"],
                                    "verdict": "relevant", "next": "//evil.example/"}, follow_redirects=False)
    assert r.headers["location"] == f"/article/{ids['OpenAI weighs an IPO']}"


def test_feeds_pause_and_reset(site) -> None:
    client, config, _ids = site
    with Store(config.storage_path) as store:
        url = store.list_feeds()[0].url
    token = csrf_of(client)
    assert client.post("/feeds/pause", data={"csrf": token, "url": url}).status_code == 200
    with Store(config.storage_path) as store:
        assert store.get_feed(url).disabled == "paused"
    assert "paused" in text(client.get("/feeds").text)
    client.post("/feeds/reset", data={"csrf": token, "url": url})
    with Store(config.storage_path) as store:
        assert store.get_feed(url).disabled is None
    assert client.post("/feeds/pause", data={"csrf": token, "url": "https://nope.example/"}).status_code == 404


def test_rules_try_a_query_and_an_edited_file(site) -> None:
    client, config, ids = site
    token = csrf_of(client)
    r = client.post("/rules/try", data={"csrf": token, "query": '"stock market"', "ruletext": ""})
    body = text(r.text)
    assert "+1 newly flagged" in body and "OpenAI readies stock market debut" in body
    assert f'href="/article/{ids["OpenAI readies stock market debut"]}"' in r.text
    edited = wh.RULES.replace("query = 'Azure AND exclusiv*'", "query = 'Azure AND exclusiv* NOT sofas'")
    body = text(client.post("/rules/try", data={"csrf": token, "query": "", "ruletext": edited}).text)
    assert "-1 no longer flagged" in body and "Azure sofas" in body
    assert "azure 2 1 -1" in body and "partnership 2 1 -1" in body  # flagged per tag, before and after
    bad = client.post("/rules/try", data={"csrf": token, "query": "Azure AND (", "ruletext": ""})
    assert bad.status_code == 400 and "do not load" in bad.text
    assert (Path(config.rule_files[0])).read_text() == wh.RULES  # trying writes nothing


def test_applying_a_suggestion_rewrites_the_local_rule_file_keeping_comments(site) -> None:
    client, config, ids = site
    label(client, ids["OpenAI weighs an IPO"], "relevant")
    label(client, ids["Microsoft keeps Azure exclusive for OpenAI"], "relevant")
    label(client, ids["Azure sofas in an exclusive furniture sale"], "not_relevant")
    label(client, ids["Mild weather for the weekend"], "not_relevant")
    page = client.get("/suggestions").text
    body = text(page)
    assert "add NOT title:sofas to rule azure-exclusive" in body
    assert "before 0.667 1.000 0.800 after 1.000 1.000 1.000" in body
    assert "-1 no longer flagged" in body
    ids_ = re.findall(r'name="id" value="([^"]+)"', page)
    items = re.findall(r"<b>(add NOT title:\w+ to rule azure-exclusive)</b>", page)
    r = client.post("/suggestions/apply", data={"csrf": csrf_of(client), "id": ids_[0]}, follow_redirects=False)
    assert r.status_code == 303
    rules = Path(config.rule_files[0]).read_text()
    assert "# Web app test rules. This comment must survive" in rules and "# words for a stock market listing" in rules
    word = items[0].split("title:")[1].split()[0]
    assert f"(Azure AND exclusiv*) NOT title:{word}" in rules
    assert "precision 1.000" in text(client.get("/eval").text)
    # A stale id (already applied) is refused and writes nothing.
    again = client.post("/suggestions/apply", data={"csrf": csrf_of(client), "id": ids_[0]})
    assert again.status_code == 409 and Path(config.rule_files[0]).read_text() == rules


def test_password_protects_every_page(httpserver: HTTPServer, tmp_path: Path) -> None:
    path = wh.build(httpserver, tmp_path)
    path.write_text(path.read_text().replace('user = "ana"', 'user = "ana"\npassword = "s3cret"'))
    client = TestClient(create_app(load_config(path), clock=lambda: wh.NOW))
    assert client.get("/").status_code == 401
    assert client.get("/", auth=("ana", "wrong")).status_code == 401
    assert client.get("/", auth=("ana", "s3cret")).status_code == 200
    assert client.get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/", headers={"Authorization": "Bearer nope"}).status_code == 401
    bad = base64.b64encode(b"\xff\xfe").decode()
    assert client.get("/", headers={"Authorization": f"Basic {bad}"}).status_code == 401


@pytest.mark.parametrize("how", ["serve", "run"])
def test_serve_refuses_a_public_address_without_a_password(
    how: str, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    config = wh.write_config(tmp_path, [])
    config.write_text(config.read_text().replace('user = "ana"', 'user = "ana"\nenabled = true\nhost = "0.0.0.0"'))
    args = ["serve"] if how == "serve" else ["run"]
    r = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), *args],
                       capture_output=True, text=True, env=subprocess_env, timeout=300)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "monitor: refusing to serve on 0.0.0.0: not a loopback address and [web] has no password "
        "(set [web] password or password_env, or bind to 127.0.0.1)"
    ]


def test_web_config_is_checked(tmp_path: Path) -> None:
    from core.errors import ConfigError

    config = wh.write_config(tmp_path, [], '')
    config.write_text(config.read_text().replace('user = "ana"', 'user = "ana"\nport = 70000\nbogus = 1'))
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert any("web.port: must be between 1 and 65535" in p for p in err.value.problems)
    assert any("web.bogus: unknown key" in p for p in err.value.problems)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_page(url: str, proc: subprocess.Popen[str]) -> str:
    import time
    import urllib.request

    for _ in range(3600):  # waiting (up to minutes on a loaded machine) for the server to listen; nothing is timed
        if proc.poll() is not None:
            raise AssertionError(f"the server exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode()
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the server never answered")


@pytest.mark.parametrize("how", ["serve", "run"])
def test_serve_and_run_serve_the_app_on_loopback(
    how: str, httpserver: HTTPServer, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    port = free_port()
    config = wh.build(httpserver, tmp_path)
    config.write_text(config.read_text().replace('user = "ana"', f'user = "ana"\nenabled = true\nport = {port}'))
    args = ["serve"] if how == "serve" else ["run"]
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env)
    try:
        page = wait_for_page(f"http://127.0.0.1:{port}/search?q=OpenAI", proc)
        assert "1–4 of 4 articles" in text(page)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_day_picker_and_bad_input_are_one_clear_message(site) -> None:
    client, _config, _ids = site
    assert "Digest: 2026-11-19" in text(client.get("/?day=2026-11-19").text)
    today = text(client.get("/").text)
    assert "Digest: 2026-11-20 (today, so far)" in today
    assert "No flagged articles on 2026-11-20. The latest day with some: 2026-11-19" in today
    for url in ("/day/yesterday", "/search?from=11/19/2026"):
        r = client.get(url)
        assert r.status_code == 400 and "is not a day like 2026-11-23" in text(r.text)
    bad = client.post("/label", data={"csrf": csrf_of(client), "article": "x", "verdict": "relevant"})
    assert bad.status_code == 400 and "missing article id" in bad.text
    odd = client.post("/label", data={"csrf": csrf_of(client), "article": 1, "verdict": "maybe"})
    assert odd.status_code == 400 and "unknown verdict" in odd.text


def test_without_a_password_only_loopback_host_names_are_served(site) -> None:
    client, _config, _ids = site
    assert client.get("/", headers={"Host": "localhost:8470"}).status_code == 200
    rebound = client.get("/", headers={"Host": "attacker.example:8470"})
    assert rebound.status_code == 421 and "open the app by 127.0.0.1 or localhost" in rebound.text
    assert client.post("/label", headers={"Host": "attacker.example"}, data={"csrf": csrf_of(client)}).status_code == 421
