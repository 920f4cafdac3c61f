"""Distributed polling (issue 14) with real servers: redis-server, `monitor worker` processes,
`monitor poll`/`monitor run` subprocesses and feeds served on 127.0.0.1. No mocks.

Each test starts its own Redis (or uses MONITOR_TEST_REDIS_URL) and real
worker processes; waits are for a process to do something, never timings.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import queue_support
from feedgen import rss, write_config
from queue_support import FeedServer, Worker, queue_config, wait_until

# The real-server fixtures (redis-server, the loopback feed server), shared with other queue tests.
redis_server = queue_support.redis_server
feed_server = queue_support.feed_server
own_redis_server = queue_support.own_redis_server

pytestmark = [pytest.mark.queue, pytest.mark.slow]

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "feeds" / "wellformed"


def items(feed: int, n: int, *, extra: str = "") -> list[dict[str, str]]:
    return [
        {"title": f"Wire {feed} story {i}", "link": f"https://wire.example/{feed}/{i}",
         "text": f"feed {feed} item {i} words {extra}".strip()}
        for i in range(n)
    ]


def monitor(cwd: Path, env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def stored(db: Path) -> tuple[list[tuple[Any, ...]], int]:
    """What a poll stored, independent of when and in which order: articles and the entry count.

    An article two feeds carry with different words keeps the first feed's
    words (docs/architecture.md, entry identity), and which feed is first
    depends on which worker finishes first: its words are compared only
    where one feed carries the article."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT url, title, CASE WHEN (SELECT count(DISTINCT feed_id) FROM entries e WHERE e.article_id = a.id) = 1 "
            "THEN content_hash END, flagged, tags FROM articles a ORDER BY url, title"
        ).fetchall()
        entries = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
    return rows, entries


def article_urls(db: Path) -> list[str]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db) as conn:
            return [u for (u,) in conn.execute("SELECT url FROM articles")]
    except sqlite3.OperationalError as exc:  # created by the scheduler, not yet migrated
        if "no such table" in str(exc):
            return []
        raise


@pytest.fixture
def workers(tmp_path: Path, subprocess_env: dict[str, str]) -> Any:
    started: list[Worker] = []

    def start(count: int = 2, concurrency: int = 1) -> list[Worker]:
        for _ in range(count):
            started.append(Worker(tmp_path, subprocess_env, f"worker{len(started)}", concurrency))
        return started[-count:]

    yield start
    for w in started:
        w.stop()


def test_poll_through_two_workers_stores_what_the_in_process_poll_stores(
    tmp_path: Path, subprocess_env: dict[str, str], redis_server: Any, feed_server: FeedServer, workers: Any
) -> None:
    urls = [feed_server.add(f"/f{f}.xml", rss(items(f, 15, extra="Azure exclusive" if f % 2 else ""))) for f in range(6)]
    # The same story in two feeds: one article, two entries, whichever worker stores it first.
    urls.append(feed_server.add("/copy.xml", rss(items(0, 3))))
    corpus = sorted(CORPUS.glob("*"))[:12] if CORPUS.is_dir() else []
    urls += [feed_server.add(f"/corpus/{p.name}", p.read_bytes()) for p in corpus]
    alone = tmp_path / "alone"
    alone.mkdir()
    write_config(alone, urls)
    done = monitor(alone, subprocess_env, "poll")
    assert done.returncode == 0, done.stderr

    write_config(tmp_path, urls, queue_config(redis_server.url))
    workers(2)
    done = monitor(tmp_path, subprocess_env, "poll")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"polled {len(urls)} feeds: {len(urls)} ok"), done.stdout
    expected, entries = stored(alone / "data" / "monitor.db")
    got, got_entries = stored(tmp_path / "data" / "monitor.db")
    assert len(expected) >= 6 * 15 + 10 * len(corpus) // 2  # the corpus feeds did store something
    assert got == expected
    assert got_entries == entries >= len(expected) + 3  # the copies are entries, not articles


def test_a_task_delivered_twice_stores_nothing_twice(
    tmp_path: Path, subprocess_env: dict[str, str], redis_server: Any, feed_server: FeedServer, workers: Any
) -> None:
    url = feed_server.add("/slow.xml", rss(items(1, 20)), delay=1.0)
    write_config(tmp_path, [url], queue_config(redis_server.url))
    done = monitor(tmp_path, subprocess_env, "feeds", "list", "--json")  # creates the database, syncs the feed
    assert done.returncode == 0, done.stderr
    workers(2)
    # The same task twice at once, as a redelivery does: both workers get one.
    script = (
        "import sys, json\n"
        "from monitor.config import load_config\n"
        "from monitor.queue.dispatch import Dispatcher\n"
        "from monitor.queue.rulebook import publish_rules\n"
        "from monitor.queue.tasks import TASK, QUEUE\n"
        "from storage import Store\n"
        "c = load_config('monitor.toml')\n"
        "with Store(c.storage_path) as s:\n"
        "    v = publish_rules(s, c.rule_files); f = s.list_feeds()[0]\n"
        "d = Dispatcher(c.queue)\n"
        "rs = [d.app.send_task(TASK, args=[f.id, f.url, v], queue=QUEUE) for _ in range(2)]\n"
        "print(json.dumps([r.get(timeout=120) for r in rs]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=subprocess_env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    reports = json.loads(done.stdout)
    assert sorted(r["new"] for r in reports) == [0, 20]
    assert feed_server.most_active == 1  # the feed lock: never two workers on the feed at once
    urls = article_urls(tmp_path / "data" / "monitor.db")
    assert len(urls) == len(set(urls)) == 20


def test_kill_9_a_worker_mid_task_the_other_completes_the_feed(
    tmp_path: Path, subprocess_env: dict[str, str], redis_server: Any, feed_server: FeedServer, workers: Any
) -> None:
    url = feed_server.add("/slow.xml", rss(items(2, 25)), delay=3.0)
    write_config(tmp_path, [url], queue_config(redis_server.url, visibility_timeout=2, lock_timeout=2))
    first, second = workers(2)
    poll = subprocess.Popen([sys.executable, "-m", "monitor", "poll"], cwd=tmp_path, env=subprocess_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: feed_server.requests["/slow.xml"] >= 1, 60, "a worker to start fetching the feed")
    holder = wait_until(
        lambda: next((w for w in (first, second) if "received" in w.text()), None), 30, "the worker log"
    )
    holder.kill9()  # mid-task: the feed server is still holding the response
    other = second if holder is first else first
    out, err = poll.communicate(timeout=180)
    assert poll.returncode == 0, err
    assert out.startswith("polled 1 feeds: 1 ok"), out
    assert "succeeded" in other.text()  # the feed was completed by the other worker
    urls = article_urls(tmp_path / "data" / "monitor.db")
    assert len(urls) == len(set(urls)) == 25


def test_two_monitor_runs_make_one_scheduler(
    tmp_path: Path, subprocess_env: dict[str, str], redis_server: Any, feed_server: FeedServer, workers: Any
) -> None:
    urls = [feed_server.add(f"/f{f}.xml", rss(items(f, 5))) for f in range(4)]
    write_config(tmp_path, urls, queue_config(redis_server.url, tick=1, lock_timeout=3))
    workers(1)
    logs = [tmp_path / "run0.log", tmp_path / "run1.log"]
    runs = []
    try:
        runs.append(subprocess.Popen([sys.executable, "-m", "monitor", "run"], cwd=tmp_path, env=subprocess_env,
                                     stdout=subprocess.DEVNULL, stderr=logs[0].open("wb")))
        wait_until(lambda: "enqueued 4 due feeds" in logs[0].read_text(), 60, "the first scheduler to enqueue")
        runs.append(subprocess.Popen([sys.executable, "-m", "monitor", "run"], cwd=tmp_path, env=subprocess_env,
                                     stdout=subprocess.DEVNULL, stderr=logs[1].open("wb")))
        wait_until(lambda: "another `monitor run` is scheduling" in logs[1].read_text(), 60, "the second to wait")
        wait_until(lambda: len(article_urls(tmp_path / "data" / "monitor.db")) == 20, 60, "the round to be stored")
        assert "enqueued" not in logs[1].read_text()
        # Make every feed due again: only the first schedules them, once each.
        with sqlite3.connect(tmp_path / "data" / "monitor.db") as conn:
            conn.execute("UPDATE feeds SET next_due = '2000-01-01T00:00:00+00:00'")
        wait_until(lambda: all(feed_server.requests[f"/f{f}.xml"] >= 2 for f in range(4)), 60, "the second round")
        assert "enqueued" not in logs[1].read_text()
        runs[0].kill()  # the holder dies without releasing: its lock expires, the waiting one takes over
        runs[0].wait(10)
        wait_until(lambda: "scheduler lock taken" in logs[1].read_text(), 60, "the second to take over")
    finally:
        for r in runs:
            r.terminate()
            r.wait(30)
    assert all(feed_server.requests[f"/f{f}.xml"] == 2 for f in range(4)), feed_server.requests


def test_redis_down_the_scheduler_waits_and_resumes_no_feed_lost(
    tmp_path: Path, subprocess_env: dict[str, str], own_redis_server: Any, feed_server: FeedServer, workers: Any
) -> None:
    redis_server = own_redis_server
    urls = [feed_server.add(f"/f{f}.xml", rss(items(f, 5))) for f in range(3)]
    config = write_config(tmp_path, urls, queue_config(redis_server.url, tick=1, lock_timeout=3))
    workers(1)
    log = tmp_path / "run.log"
    run = subprocess.Popen([sys.executable, "-m", "monitor", "run"], cwd=tmp_path, env=subprocess_env,
                           stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    try:
        db = tmp_path / "data" / "monitor.db"
        wait_until(lambda: len(article_urls(db)) == 15, 60, "the first round")
        redis_server.stop()
        # Feeds added while Redis is down: due now, enqueued only once it is back.
        more = [feed_server.add(f"/g{f}.xml", rss(items(10 + f, 5))) for f in range(3)]
        text = config.read_text()
        config.write_text(text + "".join(f'\n[[feeds]]\nurl = "{u}"\n' for u in more))
        wait_until(lambda: "cannot be reached" in log.read_text(), 60, "the scheduler to notice")
        time.sleep(3)  # a few ticks with Redis down (what is waited out, not a timing check)
        assert len(article_urls(db)) == 15
        redis_server.start()
        wait_until(lambda: len(article_urls(db)) == 30, 120, "the feeds added meanwhile to be polled")
    finally:
        run.terminate()
        run.wait(30)
    text = log.read_text()
    assert text.count("cannot be reached") == 1, text  # one line per outage, not one per tick
    assert "reachable again" in text
    assert "Traceback" not in text
    urls = article_urls(db)
    assert len(urls) == len(set(urls)) == 30


def test_per_host_cap_holds_across_two_workers(
    tmp_path: Path, subprocess_env: dict[str, str], redis_server: Any, feed_server: FeedServer, workers: Any
) -> None:
    urls = [feed_server.add(f"/f{f}.xml", rss(items(f, 3)), delay=0.5) for f in range(8)]
    write_config(tmp_path, urls, "[fetch]\n".join([""]) + queue_config(redis_server.url))
    text = (tmp_path / "monitor.toml").read_text().replace("[fetch]\n", "[fetch]\nper_host = 2\n")
    (tmp_path / "monitor.toml").write_text(text)
    workers(2, concurrency=2)  # four feeds at a time could reach the one host
    done = monitor(tmp_path, subprocess_env, "poll")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("polled 8 feeds: 8 ok"), done.stdout
    assert feed_server.most_active == 2  # the cap, reached and never passed


def test_a_rule_edit_reaches_a_running_worker(
    tmp_path: Path, subprocess_env: dict[str, str], redis_server: Any, feed_server: FeedServer, workers: Any
) -> None:
    first = feed_server.add("/a.xml", rss([{"title": "Zorblax merger talks", "link": "https://wire.example/a/1",
                                            "text": "zorblax zorblax merger"}]))
    later = feed_server.add("/b.xml", rss([{"title": "Zorblax merger talks again", "link": "https://wire.example/b/1",
                                            "text": "zorblax zorblax merger again"}]))
    write_config(tmp_path, [first, later], queue_config(redis_server.url))
    workers(1)
    done = monitor(tmp_path, subprocess_env, "poll", "--feed", first)
    assert done.returncode == 0 and "0 flagged" in done.stdout, done.stdout + done.stderr
    rules = tmp_path / "rules.toml"
    rules.write_text(rules.read_text() + '\n[[rules]]\nname = "zorblax"\ntags = ["watch"]\nquery = "zorblax"\n'
                     'weight = 5.0\nsource = "test"\n')
    done = monitor(tmp_path, subprocess_env, "poll", "--feed", later)
    assert done.returncode == 0 and "1 flagged" in done.stdout, done.stdout + done.stderr
    with sqlite3.connect(tmp_path / "data" / "monitor.db") as conn:
        versions = dict(conn.execute("SELECT url, rules_version FROM articles"))
        current = conn.execute("SELECT value FROM meta WHERE key = 'rules:current'").fetchone()[0]
    assert versions["https://wire.example/a/1"] != versions["https://wire.example/b/1"]
    assert current  # the scheduler side published the edit


def test_run_once_polls_the_due_feeds_through_workers_and_keeps_the_redis_password_secret(
    tmp_path: Path, subprocess_env: dict[str, str], feed_server: FeedServer, workers: Any
) -> None:
    if not Path(queue_support.REDIS_BIN).exists():
        pytest.skip("redis-server is not installed")
    password = "rd-pass-5f4e3d2c"
    server = queue_support.RedisServer(tmp_path, password=password)
    server.start()
    try:
        urls = [feed_server.add(f"/f{f}.xml", rss(items(f, 4))) for f in range(2)]
        write_config(tmp_path, urls, queue_config(server.url))
        (worker,) = workers(1)
        done = monitor(tmp_path, subprocess_env, "-v", "run", "--once")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("polled 2 feeds: 2 ok"), done.stdout
        assert len(article_urls(tmp_path / "data" / "monitor.db")) == 8
        assert "***@127.0.0.1" in worker.text()  # the broker URL is shown, redacted
        assert password not in done.stdout + done.stderr + worker.text()
    finally:
        server.stop()


def test_the_scheduler_does_not_enqueue_a_feed_whose_task_is_pending(
    tmp_path: Path, subprocess_env: dict[str, str], redis_server: Any, feed_server: FeedServer, workers: Any
) -> None:
    url = feed_server.add("/slow.xml", rss(items(3, 4)), delay=4.0)  # pending for several ticks
    write_config(tmp_path, [url], queue_config(redis_server.url, tick=1))
    workers(1)
    log = tmp_path / "run.log"
    run = subprocess.Popen([sys.executable, "-m", "monitor", "run"], cwd=tmp_path, env=subprocess_env,
                           stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    try:
        wait_until(lambda: len(article_urls(tmp_path / "data" / "monitor.db")) == 4, 60, "the slow feed to be stored")
        ticks_before = log.read_text().count("enqueued")
        wait_until(lambda: run.poll() is not None or "monitor running" in log.read_text(), 10, "the log")
        time.sleep(2)  # two more ticks after the write: the feed is no longer due (not a timing check)
    finally:
        run.terminate()
        run.wait(30)
    assert feed_server.requests["/slow.xml"] == 1
    import redis

    # Nobody reads the scheduler's reports: they are not kept in the result backend.
    assert redis.Redis.from_url(redis_server.url).keys("celery-task-meta-*") == []
    assert ticks_before == log.read_text().count("enqueued 1 due feeds") == 1, log.read_text()


def test_a_thread_pool_worker_polls_feeds_at_once_each_thread_with_its_own_store(
    tmp_path: Path, subprocess_env: dict[str, str], redis_server: Any, feed_server: FeedServer
) -> None:
    # Slow feeds: with 4 threads the fetches overlap (the server sees several at once).
    urls = [feed_server.add(f"/t{f}.xml", rss(items(f, 6)), delay=0.5) for f in range(8)]
    # Two feeds carrying the same articles, decided in two threads: still one article each.
    urls.append(feed_server.add("/copy.xml", rss(items(0, 6)), delay=0.5))
    write_config(tmp_path, urls, queue_config(redis_server.url))
    worker = Worker(tmp_path, subprocess_env, "threads", threads=4)
    try:
        done = monitor(tmp_path, subprocess_env, "poll")
    finally:
        worker.stop()
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"polled {len(urls)} feeds: {len(urls)} ok"), done.stdout
    assert feed_server.most_active >= 2  # tasks ran at once in one process
    rows, entries = stored(tmp_path / "data" / "monitor.db")
    assert len(rows) == 8 * 6 and entries == 9 * 6
    assert "Traceback" not in worker.text()
