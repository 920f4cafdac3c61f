"""The CLI through its real entry point (`python -m monitor` in a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from pytest_httpserver import HTTPServer

from feedgen import rss, write_config
from monitor.cli import main

IPO = {"title": "OpenAI weighs an IPO", "link": "https://wire.example/ipo", "text": "ChatGPT maker OpenAI may file for an initial public offering next year."}
AZURE = {"title": "Azure stays exclusive", "link": "https://wire.example/azure", "text": "Microsoft keeps Azure as the exclusive cloud for OpenAI, for now."}


def monitor(env: dict[str, str], cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        out.append((prefix + (name,), cmd))
        if isinstance(cmd, click.Group):
            out.extend(all_commands(cmd, prefix + (name,)))
    return out


def test_every_command_has_help_text() -> None:
    commands = all_commands(main)
    names = {" ".join(path) for path, _ in commands}
    assert {"poll", "status", "search", "run", "digest", "feeds add", "feeds import", "feeds export", "rules check"} <= names
    for path, cmd in commands:
        assert cmd.help and len(cmd.help.strip()) > 15, f"`monitor {' '.join(path)}` has no help text"
        for param in cmd.params:
            if isinstance(param, click.Option):
                assert param.help, f"`monitor {' '.join(path)}` option {param.opts} has no help"


def test_help_through_the_entry_point(subprocess_env: dict[str, str], tmp_path: Path) -> None:
    proc = monitor(subprocess_env, tmp_path, "--help")
    assert proc.returncode == 0
    for word in ("poll", "status", "search", "feeds", "rules", "run", "digest"):
        assert word in proc.stdout


def test_poll_status_and_search_end_to_end(httpserver: HTTPServer, tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(rss([IPO, AZURE]), content_type="application/rss+xml")
    httpserver.expect_request("/dead.xml").respond_with_data("no", status=404)
    write_config(tmp_path, [httpserver.url_for("/feed.xml"), httpserver.url_for("/dead.xml")])

    proc = monitor(subprocess_env, tmp_path, "poll")
    assert proc.returncode == 0, proc.stderr
    assert "polled 2 feeds: 1 ok, 0 not modified, 1 failed (1 HTTP 404); 2 new articles, 2 flagged" in proc.stdout
    assert "404" in proc.stderr and "Traceback" not in proc.stderr

    proc = monitor(subprocess_env, tmp_path, "status", "--json")
    rows = {r["url"]: r for r in json.loads(proc.stdout)}
    good, dead = rows[httpserver.url_for("/feed.xml")], rows[httpserver.url_for("/dead.xml")]
    for key in ("url", "name", "last_status", "last_error", "error_count", "articles", "last_fetched", "next_due"):
        assert key in good
    assert (good["last_status"], good["articles"], good["error_count"]) == ("ok", 2, 0)
    assert (dead["last_status"], dead["error_count"]) == ("error", 1) and "404" in dead["last_error"]

    proc = monitor(subprocess_env, tmp_path, "status")
    assert proc.returncode == 0 and "Test Wire" in proc.stdout and "2 articles stored" in proc.stdout

    proc = monitor(subprocess_env, tmp_path, "search", "initial public offering", "--json")
    assert [r["url"] for r in json.loads(proc.stdout)] == [IPO["link"]]
    proc = monitor(subprocess_env, tmp_path, "search", "nothing-like-this")
    assert proc.returncode == 0 and "No stored article matches" in proc.stdout


def test_bad_config_lists_every_problem_and_runs_nothing(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    (tmp_path / "monitor.toml").write_text('[fetch]\nconcurrency = -1\n[schedule]\ninterval = "soon"\n')
    proc = monitor(subprocess_env, tmp_path, "poll")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("monitor: ") and "monitor.toml:" in line for line in lines)
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "data").exists()


def test_feeds_add_list_reset_remove_and_opml_round_trip(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    (tmp_path / "monitor.toml").write_text("feeds = []\n")
    opml = tmp_path / "in.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head><title>mine</title></head><body>'
        '<outline text="AI"><outline text="One" title="One" type="rss" xmlUrl="https://one.example/feed"/>'
        '<outline text="Two" type="rss" xmlUrl="https://two.example/rss"/></outline></body></opml>'
    )
    assert monitor(subprocess_env, tmp_path, "feeds", "import", str(opml)).returncode == 0
    proc = monitor(subprocess_env, tmp_path, "feeds", "add", "https://three.example/atom", "--name", "Three", "--interval", "15m", "--no-discover")
    assert proc.returncode == 0 and "Added Three" in proc.stdout
    listed = json.loads(monitor(subprocess_env, tmp_path, "feeds", "list", "--json").stdout)
    assert [(f["url"], f["name"]) for f in listed] == [
        ("https://one.example/feed", "One"),
        ("https://two.example/rss", "Two"),
        ("https://three.example/atom", "Three"),
    ]
    assert listed[2]["interval"] == 900
    assert monitor(subprocess_env, tmp_path, "feeds", "reset", "https://two.example/rss").returncode == 0
    assert monitor(subprocess_env, tmp_path, "feeds", "remove", "https://two.example/rss").returncode == 0
    out = tmp_path / "out.opml"
    assert monitor(subprocess_env, tmp_path, "feeds", "export", str(out)).returncode == 0
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / "monitor.toml").write_text("feeds = []\n")
    assert monitor(subprocess_env, tmp_path / "fresh", "feeds", "import", str(out)).returncode == 0
    again = json.loads(monitor(subprocess_env, tmp_path / "fresh", "feeds", "list", "--json").stdout)
    assert [(f["url"], f["name"]) for f in again] == [("https://one.example/feed", "One"), ("https://three.example/atom", "Three")]


@pytest.mark.parametrize(
    "args,message",
    [
        (("feeds", "remove", "https://nowhere.example/feed"), "no feed with URL https://nowhere.example/feed"),
        (("feeds", "add", "not-a-url"), "is not an http(s) URL"),
        (("feeds", "import", "missing.opml"), "does not exist"),
        (("digest", "--date", "yesterday-ish"), "is not a date"),
    ],
)
def test_errors_are_one_clear_line(tmp_path: Path, subprocess_env: dict[str, str], args: tuple[str, ...], message: str) -> None:
    (tmp_path / "monitor.toml").write_text("feeds = []\n")
    proc = monitor(subprocess_env, tmp_path, *args)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_broken_opml_is_reported_with_file_and_line(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    (tmp_path / "monitor.toml").write_text("feeds = []\n")
    bad = tmp_path / "bad.opml"
    bad.write_text('<?xml version="1.0"?>\n<opml version="2.0">\n<body>\n<outline xmlUrl="x">\n</opml>\n')
    proc = monitor(subprocess_env, tmp_path, "feeds", "import", str(bad))
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith(f"monitor: {bad}:5:")
