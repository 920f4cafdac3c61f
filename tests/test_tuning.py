"""`monitor rules explain` and `monitor rules backtest` on a real stored database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pytest_httpserver import HTTPServer

from feedgen import RULES, rss, write_config

IPO = {"title": "OpenAI weighs an IPO", "link": "https://wire.example/ipo", "text": "ChatGPT maker OpenAI may file for an initial public offering."}
AZURE = {"title": "Azure stays exclusive", "link": "https://wire.example/azure", "text": "Microsoft keeps Azure as the exclusive cloud for OpenAI."}
PLAIN = {"title": "Quarterly results", "link": "https://wire.example/results", "text": "Revenue rose in the cloud division."}


def monitor(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def polled(httpserver: HTTPServer, tmp_path: Path, env: dict[str, str]) -> None:
    httpserver.expect_request("/f").respond_with_data(rss([IPO, AZURE, PLAIN]), content_type="application/rss+xml")
    write_config(tmp_path, [httpserver.url_for("/f")])
    assert monitor(env, tmp_path, "poll").returncode == 0


def test_explain_shows_rules_terms_spans_and_score(httpserver: HTTPServer, tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    polled(httpserver, tmp_path, subprocess_env)
    proc = monitor(subprocess_env, tmp_path, "rules", "explain", IPO["link"])
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "OpenAI weighs an IPO" in out and "FLAGGED" in out
    assert "openai-ipo" in out
    assert "«IPO»" in out or "«OpenAI»" in out  # matched spans are marked
    unflagged = monitor(subprocess_env, tmp_path, "rules", "explain", PLAIN["link"])
    assert unflagged.returncode == 0 and "not flagged" in unflagged.stdout
    missing = monitor(subprocess_env, tmp_path, "rules", "explain", "https://nowhere.example/x")
    assert missing.returncode == 1 and "no stored article" in missing.stderr and "Traceback" not in missing.stderr


def test_backtest_reports_the_difference_and_apply_records_tag_changes(
    httpserver: HTTPServer, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    polled(httpserver, tmp_path, subprocess_env)
    candidate = tmp_path / "candidate.toml"
    # Drop the Azure rule, add one for quarterly results.
    candidate.write_text(
        RULES.split("[[rules]]\nname = \"azure-exclusive\"")[0]
        + '[[rules]]\nname = "results"\ntags = ["investment"]\nquery = \'"quarterly results"\'\nweight = 2.0\nsource = "test"\n'
    )
    proc = monitor(subprocess_env, tmp_path, "rules", "backtest", "--rules", str(candidate), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["articles"] == 3
    assert (report["flagged_before"], report["flagged_after"]) == (2, 2)
    assert len(report["newly_flagged"]) == 1 and len(report["no_longer_flagged"]) == 1
    assert report["per_tag"]["azure"]["flagged_before"] == 1 and report["per_tag"]["azure"]["flagged_after"] == 0
    assert report["per_tag"]["investment"]["flagged_after"] == 1
    assert report["applied"] == 0

    text = monitor(subprocess_env, tmp_path, "rules", "backtest", "--rules", str(candidate))
    assert "newly flagged (1)" in text.stdout and "Quarterly results" in text.stdout
    assert "no longer flagged (1)" in text.stdout and "Azure stays exclusive" in text.stdout
    assert "Nothing was changed" in text.stdout

    # Nothing changed in the store without --apply.
    again = json.loads(monitor(subprocess_env, tmp_path, "rules", "backtest", "--rules", str(candidate), "--json").stdout)
    assert again["newly_flagged"] == report["newly_flagged"]

    applied = monitor(subprocess_env, tmp_path, "rules", "backtest", "--rules", str(candidate), "--apply")
    assert applied.returncode == 0 and "Applied: 2 articles re-tagged" in applied.stdout
    after = json.loads(monitor(subprocess_env, tmp_path, "rules", "backtest", "--rules", str(candidate), "--json").stdout)
    assert after["newly_flagged"] == [] and after["no_longer_flagged"] == []
    explain = monitor(subprocess_env, tmp_path, "rules", "explain", AZURE["link"]).stdout
    assert "tag azure removed" in explain and "tag partnership removed" in explain
    searched = json.loads(monitor(subprocess_env, tmp_path, "search", "quarterly", "--json").stdout)
    assert searched[0]["flagged"] is True and searched[0]["tags"] == ["investment"]


def test_backtest_since_filters_by_published_time(httpserver: HTTPServer, tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime

    now = datetime.now(timezone.utc)
    dated = [dict(IPO, date=format_datetime(now - timedelta(days=2))),
             dict(AZURE, date=format_datetime(now - timedelta(days=20))),
             dict(PLAIN, date=format_datetime(datetime(2012, 5, 1, tzinfo=timezone.utc)))]
    httpserver.expect_request("/f").respond_with_data(rss(dated), content_type="application/rss+xml")
    write_config(tmp_path, [httpserver.url_for("/f")])
    assert monitor(subprocess_env, tmp_path, "poll").returncode == 0
    counts = {}
    for since in ("7d", "1w", "4w", "1y", None):
        args = ["rules", "backtest", "--json"] + (["--since", since] if since else [])
        counts[since] = json.loads(monitor(subprocess_env, tmp_path, *args).stdout)["articles"]
    # All three were first seen today: the filter is on when they were published.
    assert counts == {"7d": 1, "1w": 1, "4w": 2, "1y": 2, None: 3}
    text = monitor(subprocess_env, tmp_path, "rules", "backtest", "--since", "4w").stdout
    assert text.startswith("2 stored articles published in the last 4w re-evaluated")
    for bad_value in ("lately", "0d", "3m"):
        bad = monitor(subprocess_env, tmp_path, "rules", "backtest", "--since", bad_value)
        assert bad.returncode == 2 and "is not a period like 12h, 30d, 4w or 1y" in bad.stderr


def test_explain_shows_weights_and_both_scores_when_the_rules_changed(
    httpserver: HTTPServer, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    polled(httpserver, tmp_path, subprocess_env)
    same = monitor(subprocess_env, tmp_path, "rules", "explain", IPO["link"]).stdout
    assert "the rules in force now are the same version" in same
    assert "openai-ipo [weight " in same
    # Halve every weight: the stored article was tagged with the old version.
    rules = tmp_path / "rules.toml"
    rules.write_text(rules.read_text().replace("weight = 3.0", "weight = 0.5").replace("weight = 2.0", "weight = 0.5"))
    changed = monitor(subprocess_env, tmp_path, "rules", "explain", IPO["link"])
    assert changed.returncode == 0, changed.stderr
    lines = changed.stdout.splitlines()
    both = [line for line in lines if line.startswith("score with rules ")]
    assert len(both) == 1 and "(stored): " in both[0] and "(in force now): " in both[0]
    stored_score, now_score = (float(part.split(": ")[1].split(",")[0]) for part in both[0].split("; "))
    assert now_score < stored_score
    assert "with the rules in force now (version " in changed.stdout


def test_suggest_compares_with_stored_articles_once_there_are_enough(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    from datetime import datetime, timezone

    from monitor.config import load_config
    from core.types import Article, Tagging
    from monitor.service import open_store
    from monitor.ingest import save_poll
    from storage import FeedUpdate

    (tmp_path / "monitor.toml").write_text("feeds = []\n")
    cfg = load_config(tmp_path / "monitor.toml")
    now = datetime(2026, 11, 20, tzinfo=timezone.utc)
    # A background where "Zephyrcorp" is everywhere: it is no longer distinctive.
    with open_store(cfg, now=now) as store:
        f, _ = store.add_feed("http://127.0.0.1:9/f", now=now)
        items = [(Article(guid=str(i), url=f"https://n.example/{i}", link=f"https://n.example/{i}",
                          title=f"Zephyrcorp update {i}", author="", published=now, published_from_feed=True,
                          summary_text=f"Zephyrcorp shipped release {i} of its tools."), Tagging()) for i in range(120)]
        save_poll(store, f, FeedUpdate(status="ok"), items, now=now)
    doc = tmp_path / "seed.txt"
    doc.write_text("Zephyrcorp weighs a listing. Zephyrcorp bankers met. Quantumleaf merger talks: Quantumleaf board.")
    proc = monitor(subprocess_env, tmp_path, "rules", "suggest", str(doc), "--top", "5")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "(compared with 120 stored articles)"
    assert lines[2].split()[-1] == "Quantumleaf"  # the stored feeds already say Zephyrcorp all the time
    builtin = monitor(subprocess_env, tmp_path, "rules", "suggest", str(doc), "--background", "builtin")
    assert builtin.stdout.splitlines()[-1] == "(compared with the built-in sample)"
