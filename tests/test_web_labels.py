"""Stored labels: the CLI round trip (`labels export/import`, `rules eval` with no file) and their keeping."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import web_helpers as wh
from pytest_httpserver import HTTPServer

from monitor.config import load_config
from storage import Store


def monitor(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), *args],
                          capture_output=True, text=True, env=env, timeout=120)


def ids_of(config: Path) -> dict[str, int]:
    with Store(load_config(config).storage_path) as store:
        return {r["title"]: r["id"] for r in store.iter_articles()}


def test_labels_export_import_and_eval_on_stored_labels(
    httpserver: HTTPServer, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    config = wh.build(httpserver, tmp_path)
    ids = ids_of(config)
    with Store(load_config(config).storage_path) as store:
        store.set_label(ids["OpenAI weighs an IPO"], user="ana", relevant=True, tags=["ipo"], now=wh.NOW)
        store.set_label(ids["Azure sofas in an exclusive furniture sale"], user="ana", relevant=False, tags=None, now=wh.NOW)
        store.set_label(ids["OpenAI readies stock market debut"], user="ana", relevant=True, tags=["ipo"], now=wh.NOW)
    out = tmp_path / "labels.jsonl"
    r = monitor(config, subprocess_env, "labels", "export", str(out))
    assert r.returncode == 0 and "wrote 3 labels" in r.stdout
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [x["relevant"] for x in lines] == [True, False, True]
    assert lines[0]["url"] == wh.IPO["link"] and lines[0]["topics"] == ["ipo"] and lines[1]["topics"] == []

    # The exported file measures the same as the stored labels.
    stored = json.loads(monitor(config, subprocess_env, "rules", "eval", "--json").stdout)
    from_file = json.loads(monitor(config, subprocess_env, "rules", "eval", str(out), "--json").stdout)
    assert stored["precision"] == from_file["precision"] == 0.5
    assert stored["recall"] == from_file["recall"] == 0.5
    assert stored["per_tag"]["ipo"] == from_file["per_tag"]["ipo"]

    # Import into a fresh database of the same feeds: URLs find the articles; an unknown URL is one line.
    other = tmp_path / "again"
    other.mkdir()
    httpserver.clear()
    config2 = wh.build(httpserver, other)
    extra = json.dumps({"url": "https://nowhere.example/x", "title": "x", "relevant": True})
    out.write_text(out.read_text() + extra + "\n")
    r = monitor(config2, subprocess_env, "labels", "import", str(out))
    assert r.returncode == 0, r.stderr
    assert "imported 3 labels, skipped 1" in r.stdout
    assert r.stderr.strip() == f"{out}:4: no stored article with URL https://nowhere.example/x; skipped"
    again = json.loads(monitor(config2, subprocess_env, "rules", "eval", "--json").stdout)
    assert again["precision"] == stored["precision"] and again["fn"] == stored["fn"] == 1


def test_eval_without_labels_says_how_to_get_some(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    config = wh.write_config(tmp_path, [])
    r = monitor(config, subprocess_env, "rules", "eval")
    assert r.returncode == 1
    assert r.stderr.startswith("monitor: no stored labels yet")


def test_a_label_keeps_the_latest_verdict_and_the_history(httpserver: HTTPServer, tmp_path: Path) -> None:
    config = load_config(wh.build(httpserver, tmp_path))
    with Store(config.storage_path) as store:
        aid = store.article(wh.SOFA["link"])["id"]
        store.set_label(aid, user="ana", relevant=True, tags=None, now=wh.NOW)
        store.set_label(aid, user="ana", relevant=False, tags=None, now=wh.NOW + timedelta(minutes=1))
        assert [(x["relevant"], x["user"]) for x in store.labels()] == [(False, "ana")]
        assert store.db.execute("SELECT count(*) FROM label_history").fetchone()[0] == 2


def test_pruning_keeps_labeled_articles(httpserver: HTTPServer, tmp_path: Path) -> None:
    config = load_config(wh.build(httpserver, tmp_path))
    with Store(config.storage_path) as store:
        debut = store.article(wh.DEBUT["link"])["id"]  # not flagged: prunable, but labeled a miss
        store.set_label(debut, user="ana", relevant=True, tags=["ipo"], now=wh.NOW)
        removed = store.prune(before=wh.NOW + timedelta(days=400))
        assert removed == 1  # the weather item only
        assert store.article(debut)["title"] == wh.DEBUT["title"]
