"""OPML folders: read as a feed's category, written back as nested outlines, kept through import/export."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from monitor.opml import OpmlFeed, read_opml, write_opml

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)

NESTED = b"""<?xml version="1.0"?>
<opml version="2.0"><head><title>mine</title></head><body>
  <outline type="rss" text="Loose" xmlUrl="https://loose.example/feed"/>
  <outline text="Tech">
    <outline type="rss" text="Wire" title="The Wire" xmlUrl="https://wire.example/rss"/>
    <outline text="AI">
      <outline type="rss" text="Lab" xmlUrl="https://lab.example/atom"/>
    </outline>
  </outline>
  <outline title="Business"><outline type="rss" text="Money" xmlUrl="https://money.example/feed"/></outline>
  <outline text="Dup"><outline type="rss" text="Again" xmlUrl="https://wire.example/rss"/></outline>
</body></opml>"""


def test_nested_outlines_become_categories() -> None:
    assert read_opml(NESTED) == [
        OpmlFeed("https://loose.example/feed", "Loose", None),
        OpmlFeed("https://wire.example/rss", "The Wire", "Tech"),
        OpmlFeed("https://lab.example/atom", "Lab", "Tech/AI"),
        OpmlFeed("https://money.example/feed", "Money", "Business"),
    ]


def test_write_then_read_gives_the_same_feeds_and_folders() -> None:
    feeds = read_opml(NESTED)
    text = write_opml(feeds, title="t", now=NOW)
    assert read_opml(text.encode()) == feeds
    # One folder element per folder, nested, not one per feed.
    assert text.count('text="Tech"') == 1 and text.count('text="AI"') == 1


def test_a_very_deep_file_is_read_without_recursion_error() -> None:
    depth = 5000
    data = "<opml><body>" + '<outline text="f">' * depth + '<outline xmlUrl="https://deep.example/f"/>'
    data += "</outline>" * depth + "</body></opml>"
    [feed] = read_opml(data.encode())
    assert feed.url == "https://deep.example/f" and feed.category is not None and feed.category.count("/") == depth - 1


def monitor(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_import_export_round_trip_keeps_folders(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    (tmp_path / "monitor.toml").write_text("feeds = []\n")
    src = tmp_path / "in.opml"
    src.write_bytes(NESTED)
    assert monitor(subprocess_env, tmp_path, "feeds", "import", str(src)).returncode == 0
    listed = json.loads(monitor(subprocess_env, tmp_path, "feeds", "list", "--json").stdout)
    assert [(f["url"], f["category"]) for f in listed] == [
        ("https://loose.example/feed", None),
        ("https://wire.example/rss", "Tech"),
        ("https://lab.example/atom", "Tech/AI"),
        ("https://money.example/feed", "Business"),
    ]
    out = tmp_path / "out.opml"
    assert monitor(subprocess_env, tmp_path, "feeds", "export", str(out)).returncode == 0
    assert read_opml(out.read_bytes()) == read_opml(NESTED)


def test_a_configured_category_is_exported_as_a_folder(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    (tmp_path / "monitor.toml").write_text(
        '[[feeds]]\nurl = "https://wire.example/rss"\nname = "Wire"\ncategory = "Tech/AI"\nfull_text = true\n'
    )
    proc = monitor(subprocess_env, tmp_path, "feeds", "export")
    assert proc.returncode == 0, proc.stderr
    assert read_opml(proc.stdout.encode()) == [OpmlFeed("https://wire.example/rss", "Wire", "Tech/AI")]
    [feed] = json.loads(monitor(subprocess_env, tmp_path, "feeds", "list", "--json").stdout)
    assert feed["full_text"] is True
