"""PostgreSQL end to end: the CLI a user runs, on `[storage] url`, beside the same run on SQLite.

A real PostgreSQL (conftest: MONITOR_TEST_PG_URL, else a private cluster),
real feeds on a loopback HTTP server, `python -m monitor` subprocesses. The
two backends must store the same articles and answer every read command
the same way; the password given by `password_env` never shows.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from feedgen import CORPUS, RULES, rss, wellformed_corpus
from pytest_httpserver import HTTPServer
from starlette.testclient import TestClient

from monitor.config import load_config
from storage import open_store

pytestmark = pytest.mark.pg

DAY = "2026-11-19"


def at(hour: int) -> str:
    return format_datetime(datetime(2026, 11, 19, hour, 0, tzinfo=timezone.utc))


# Made up for this test: one event told by two outlets, a flagged story of its own, a miss, a copy.
WIRE = [
    {"title": "OpenAI weighs an IPO as soon as next year", "link": "https://wire.example/ipo", "guid": "w1",
     "date": at(8), "text": "OpenAI is weighing an initial public offering as soon as next year, people said."},
    {"title": "Microsoft keeps Azure exclusive for OpenAI training", "link": "https://wire.example/azure",
     "guid": "w2", "date": at(9), "text": "Azure stays the exclusive cloud for OpenAI's training runs, Microsoft said."},
    {"title": "Quiet weekend weather ahead", "link": "https://wire.example/weather", "guid": "w3", "date": at(10),
     "text": "Light winds and sunshine are expected across the region."},
]
POST = [
    {"title": "OpenAI weighs an IPO next year, sources say", "link": "https://post.example/openai-ipo",
     "guid": "p1", "date": at(11), "text": "OpenAI is weighing an initial public offering as soon as next year, "
     "people said."},
    {"title": "Copy of the wire's Azure story", "link": "https://wire.example/azure?utm_source=post", "guid": "p2",
     "date": at(9), "text": "Azure stays the exclusive cloud for OpenAI's training runs, Microsoft said."},
]
DIGEST = [
    {"title": f"Briefing {i}: OpenAI and Microsoft renegotiate", "link": f"https://digest.example/{i}", "guid": f"d{i}",
     "date": at(12 + i % 8), "text": f"Item {i}: the Azure exclusivity clause is being renegotiated."}
    for i in range(12)
]

PASSWORD_ENV = "MONITOR_TEST_PG_PASSWORD"


def serve(httpserver: HTTPServer) -> list[str]:
    for path, items, title in (("/wire", WIRE, "Wire"), ("/post", POST, "Post"), ("/digest", DIGEST, "Digest")):
        httpserver.expect_request(path).respond_with_data(rss(items, title=title), content_type="application/rss+xml")
    return [httpserver.url_for(p) for p in ("/wire", "/post", "/digest")]


def split_password(url: str) -> tuple[str, str]:
    """(the URL without its password, the password): the config gets the first, the environment the second."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=user + host)), parts.password or ""


def write_config(root: Path, feeds: list[str], storage: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "rules.toml").write_text(RULES, encoding="utf-8")
    lines = ["[storage]", storage, "[rules]", 'files = ["rules.toml"]', "[fetch]", "timeout = 5", "[schedule]",
             "jitter = 0", "[web]", 'user = "ana"']
    for url in feeds:
        lines += ["[[feeds]]", f'url = "{url}"']
    (root / "monitor.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root / "monitor.toml"


def stored(target: Path | str) -> set[tuple[str, str, str, str]]:
    """(feed URL, guid, URL, title) of every stored article."""
    with open_store(target) as store:
        feeds = {f.id: f.url for f in store.list_feeds()}
        return {(feeds[a["feed_id"]], a["guid"], a["url"], a["title"]) for a in store.iter_articles()}


def test_every_command_on_postgres_answers_as_on_sqlite(
    httpserver: HTTPServer, tmp_path: Path, pg_url: str, subprocess_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    feeds = serve(httpserver)
    url, password = split_password(pg_url)
    assert password, "the test servers use password authentication"
    roots = {"sqlite": tmp_path / "sq", "pg": tmp_path / "pg"}
    write_config(roots["sqlite"], feeds, 'path = "data/monitor.db"')
    write_config(roots["pg"], feeds, f'url = "{url}"\npassword_env = "{PASSWORD_ENV}"')
    env = dict(subprocess_env, **{PASSWORD_ENV: password})
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        json.dumps({"url": "https://wire.example/ipo", "title": "t", "text": "x", "relevant": True, "topics": ["ipo"]})
        + "\n"
        + json.dumps({"url": "https://wire.example/weather", "title": "t", "text": "x", "relevant": False})
        + "\n",
        encoding="utf-8",
    )

    def monitor(backend: str, *args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "monitor", *args], cwd=roots[backend], env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{backend} monitor {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
        assert password not in proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        return proc.stdout

    commands = [
        # One feed after the other, so which copy came first (and every id) is the same on both.
        *[("poll", "--feed", f) for f in feeds],
        ("poll",),  # the second round finds everything stored: nothing new, nothing doubled
        ("labels", "import", str(labels)),
        ("digest", "--date", DAY, "--format", "json,md", "--no-deliver"),
        ("stories", "--date", DAY, "--json"),
        ("trends", "--days", "7", "--date", DAY, "--json"),
        ("search", "OpenAI IPO", "--json"),
        ("search", "azure OR weather", "--all", "--json"),
        ("search", '"initial public offering"', "--json"),
        ("search", "renegoti*", "--all", "--json"),
        ("search", 'NOT "unbalanced', "--json"),
        ("rules", "backtest", "--json"),
        ("labels", "export", "out.jsonl"),
        ("status",),
    ]
    out: dict[str, dict[tuple[str, ...], str]] = {"sqlite": {}, "pg": {}}
    for backend in ("sqlite", "pg"):
        for cmd in commands:
            out[backend][cmd] = monitor(backend, *cmd)

    monkeypatch.setenv(PASSWORD_ENV, password)
    config = load_config(roots["pg"] / "monitor.toml")
    pg_target = config.store_target
    articles = stored(roots["sqlite"] / "data" / "monitor.db")
    assert len(articles) == len(WIRE) + 1 + len(DIGEST)  # the post's copy of the Azure story is linked, not stored
    assert stored(pg_target) == articles

    for cmd in [("stories", "--date", DAY, "--json"), ("trends", "--days", "7", "--date", DAY, "--json"),
                ("rules", "backtest", "--json")]:
        assert json.loads(out["pg"][cmd]) == json.loads(out["sqlite"][cmd]), cmd
    digest = {b: json.loads((roots[b] / "data" / "digests" / f"{DAY}.json").read_text()) for b in roots}
    assert digest["pg"]["items"] == digest["sqlite"]["items"] and digest["sqlite"]["items"]
    assert (roots["pg"] / "out.jsonl").read_text() == (roots["sqlite"] / "out.jsonl").read_text()
    assert len((roots["pg"] / "out.jsonl").read_text().splitlines()) == 2
    for cmd in commands:
        if cmd[0] == "search":
            hits = {b: json.loads(out[b][cmd]) for b in roots}
            # Ranking formulas differ (bm25 against ts_rank); what is found must not.
            assert {h["url"] for h in hits["pg"]} == {h["url"] for h in hits["sqlite"]}, cmd
    assert {h["url"] for h in json.loads(out["pg"][("search", "OpenAI IPO", "--json")])} == {
        "https://wire.example/ipo", "https://post.example/openai-ipo"}
    assert len(json.loads(out["pg"][("search", "renegoti*", "--all", "--json")])) == len(DIGEST)
    assert out["pg"][("poll",)].splitlines()[-1] == out["sqlite"][("poll",)].splitlines()[-1]
    assert "postgresql://" not in out["sqlite"][("status",)]
    assert "Database: postgresql://" in out["pg"][("status",)]

    # The web app's main pages on the PostgreSQL store read as they do on SQLite (tags aside: CSRF tokens differ).
    from monitor.web.app import create_app

    clients = {b: TestClient(create_app(load_config(roots[b] / "monitor.toml")), base_url="http://127.0.0.1")
               for b in roots}
    with open_store(pg_target) as store:
        ipo = store.article("https://wire.example/ipo")
    pages = {
        f"/day/{DAY}": "Microsoft keeps Azure exclusive",
        f"/story/{ipo['story_id']}": "OpenAI weighs an IPO",
        f"/article/{ipo['id']}": "initial public offering",
        "/search?q=azure": "Azure",
        "/search?q=renegoti*": "Briefing 11",
        f"/timeline?tag=azure&day={DAY}": "",
        "/feeds": httpserver.url_for("/wire"),
        "/rules": "openai-ipo",
        "/eval": "",
    }
    for page, text in pages.items():
        seen, linked = {}, {}
        for b, client in clients.items():
            resp = client.get(page)
            assert resp.status_code == 200, (b, page, resp.text[:500])
            seen[b] = " ".join(re.sub(r"<[^>]*>", " ", resp.text).split()).replace(str(roots[b]), "ROOT")
            linked[b] = set(re.findall(r'href="/article/(\d+)"', resp.text))
        assert text in seen["pg"], page
        assert password not in seen["pg"]
        if page.startswith("/search"):  # ranked and cut into snippets differently: the same hits, though
            assert linked["pg"] == linked["sqlite"] and linked["pg"], page
        else:
            assert seen["pg"] == seen["sqlite"], page


SLOW_FEEDS, SLOW_ITEMS = 24, 15


@pytest.fixture
def slow_server():
    """Feeds that take a while each (threaded, so several are fetched at once), for a round that runs long."""
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def test_postgres_restarted_mid_round_loses_nothing_and_doubles_nothing(
    slow_server: HTTPServer, tmp_path: Path, pg_cluster: object, subprocess_env: dict[str, str]
) -> None:
    from pg_helpers import Databases

    cluster = pg_cluster
    dbs = Databases(cluster.url)  # type: ignore[attr-defined]
    db_url = dbs.create()
    url, password = split_password(db_url)
    feeds = []
    for f in range(SLOW_FEEDS):
        body = rss([{"title": f"Slow feed {f} item {i}", "link": f"https://slow.example/{f}/{i}", "guid": f"{f}-{i}",
                     "text": f"Words of feed {f}, item {i}."} for i in range(SLOW_ITEMS)])

        def respond(_request: object, body: bytes = body) -> object:
            from werkzeug import Response

            time.sleep(0.4)  # a slow publisher: keeps the round going while PostgreSQL restarts
            return Response(body, content_type="application/rss+xml")

        slow_server.expect_request(f"/s{f}.xml").respond_with_handler(respond)
        feeds.append(slow_server.url_for(f"/s{f}.xml"))
    write_config(tmp_path, feeds, f'url = "{url}"\npassword_env = "{PASSWORD_ENV}"')
    (tmp_path / "monitor.toml").write_text(
        (tmp_path / "monitor.toml").read_text().replace("timeout = 5", "timeout = 5\nconcurrency = 2\nper_host = 2")
    )
    env = dict(subprocess_env, **{PASSWORD_ENV: password})

    def count(sql: str) -> int:
        import psycopg

        with psycopg.connect(db_url, connect_timeout=5) as conn:
            return int(conn.execute(sql).fetchone()[0])

    proc = subprocess.Popen([sys.executable, "-m", "monitor", "poll"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Restart once some feeds are stored and the round is still under way (a condition, not a timing check).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if count("SELECT count(*) FROM fetch_log") >= 2:
                break
        except Exception:
            pass  # the schema may not exist yet
        time.sleep(0.05)
    cluster.restart()  # type: ignore[attr-defined]
    stdout, stderr = proc.communicate(timeout=300)
    stored_first = count("SELECT count(DISTINCT feed_id) FROM fetch_log")
    assert 2 <= stored_first < SLOW_FEEDS, (stdout, stderr)
    failed = [line for line in stderr.splitlines() if line.startswith("  failed:")]
    assert failed, stderr
    for line in failed:  # one clear line each: which store, what happened
        assert "PostgreSQL" in line and "postgresql://" in line and "\n" not in line, line
    assert "Traceback" not in stderr and password not in stdout + stderr
    assert proc.returncode != 0  # some feeds were not stored: the exit code says so

    again = subprocess.run([sys.executable, "-m", "monitor", "poll"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    with open_store(db_url) as store:
        urls = [a["url"] for a in store.iter_articles()]
    expected = {f"https://slow.example/{f}/{i}" for f in range(SLOW_FEEDS) for i in range(SLOW_ITEMS)}
    assert len(urls) == len(set(urls)) == len(expected)  # none doubled
    assert set(urls) == expected  # none lost
    dbs.drop(db_url)




@pytest.mark.slow
@pytest.mark.skipif(not wellformed_corpus(), reason=f"feed corpus not found at {CORPUS} (it lives beside the project in CI)")
def test_the_corpus_feeds_store_the_same_articles_on_both_backends(
    httpserver: HTTPServer, tmp_path: Path, pg_url: str
) -> None:
    """The real publishers' feeds (read in place from ../shared, served on loopback), polled into both stores."""
    from monitor.service import poll_once

    names = wellformed_corpus()
    for name in names:
        httpserver.expect_request(f"/{name}").respond_with_data((CORPUS / name).read_bytes(),
                                                                content_type="application/xml")
    feeds = [httpserver.url_for(f"/{name}") for name in names]
    when = datetime(2030, 1, 1, tzinfo=timezone.utc)  # after every corpus date, so feed dates are kept
    stores: dict[str, Path | str] = {"sqlite": tmp_path / "sqlite" / "data" / "monitor.db", "pg": pg_url}
    seen = {}
    for backend, storage in (("sqlite", 'path = "data/monitor.db"'), ("pg", f'url = "{pg_url}"')):
        path = write_config(tmp_path / backend, feeds, storage)
        config = load_config(path)
        # One feed after the other: which feed's copy of a shared URL comes first is then the same on both.
        for url in feeds:
            summary = poll_once(config, feed_urls=[url], now=when)
            assert not summary.store_error, (backend, url)
        with open_store(stores[backend]) as store:
            urls = {f.id: f.url for f in store.list_feeds()}
            entries = {(urls[fid], guid, url) for fid, guid, url in
                       store.db.execute("SELECT feed_id, guid, url FROM entries").fetchall()}
            articles = {(urls[a["feed_id"]], a["guid"], a["url"], a["title"], a["content_hash"], a["published"])
                        for a in store.iter_articles()}
            seen[backend] = (entries, articles, store.counts())
    assert len(seen["sqlite"][1]) > 1000  # the corpus holds thousands of items
    assert seen["pg"][2] == seen["sqlite"][2]
    assert seen["pg"][0] == seen["sqlite"][0]
    assert seen["pg"][1] == seen["sqlite"][1]


def test_a_wrong_password_or_no_server_is_one_line_without_the_password(
    tmp_path: Path, pg_url: str, subprocess_env: dict[str, str]
) -> None:
    from pg_helpers import free_port

    url, _password = split_password(pg_url)
    user = urlsplit(url).username or "monitor"  # the private cluster's `monitor`, or CI's server's user
    wrong = url.replace(f"{user}@", f"{user}:Wr0ng-pass-77@", 1)
    nobody = f"postgresql://monitor:Wr0ng-pass-77@127.0.0.1:{free_port()}/monitor"
    for target, cause in ((wrong, "password authentication failed"), (nobody, "Connection refused")):
        write_config(tmp_path, [], f'url = "{target}"')
        for cmd in (["status"], ["poll"], ["search", "openai"]):
            proc = subprocess.run([sys.executable, "-m", "monitor", *cmd], cwd=tmp_path, env=subprocess_env,
                                  capture_output=True, text=True, timeout=60)
            assert proc.returncode != 0, (cmd, proc.stdout)
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1, proc.stderr
            assert "cannot connect to PostgreSQL" in lines[0] and cause in lines[0], lines[0]
            assert "Wr0ng-pass-77" not in proc.stdout + proc.stderr


def test_openers_racing_on_a_new_database_migrate_it_once(pg_url: str) -> None:
    import threading

    from storage.pg_schema import MIGRATIONS

    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def opener() -> None:
        try:
            start.wait()
            open_store(pg_url).close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    import psycopg

    with psycopg.connect(pg_url) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM _migrations ORDER BY name").fetchall()]
    assert names == [name for name, _ in MIGRATIONS]
