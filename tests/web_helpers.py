"""A small monitor database for the web app tests, built the way a user builds one: a real poll.

Two feeds on a local HTTP server (pytest-httpserver), our own made-up
items, our own rule file (with comments, so an applied edit can be seen to
keep them).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from feedgen import rss

from monitor.config import load_config
from monitor.service import poll_once

DAY = "2026-11-19"
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)

RULES = """\
# Web app test rules. This comment must survive an applied suggestion.
threshold = 2.0

[aliases]
openai = ["OpenAI", "ChatGPT"]
# words for a stock market listing
listing = ["IPO", "initial public offering"]

[[rules]]
name = "openai-ipo"
tags = ["ipo"]
query = '@openai NEAR/12 @listing'
weight = 3.0

[[rules]]
name = "azure-exclusive"
tags = ["azure", "partnership"]
query = 'Azure AND exclusiv*'
weight = 2.0
"""

IPO = {"title": "OpenAI weighs an IPO", "link": "https://wire.example/ipo",
       "text": "OpenAI could file for an initial public offering next year, people familiar with the plans said."}
IPO_B = {"title": "OpenAI weighs an IPO, sources say", "link": "https://other.example/openai-ipo",
         "text": "OpenAI could file for an initial public offering next year, people familiar with the plans said."}
AZURE = {"title": "Microsoft keeps Azure exclusive for OpenAI", "link": "https://wire.example/azure",
         "text": "Microsoft keeps Azure as the exclusive cloud for OpenAI under the new terms."}
SOFA = {"title": "Azure sofas in an exclusive furniture sale", "link": "https://wire.example/sofa",
        "text": "Azure coloured sofas go on exclusive sale this weekend."}
DEBUT = {"title": "OpenAI readies stock market debut", "link": "https://wire.example/debut",
         "text": "OpenAI is preparing its shares for public trading, bankers said."}
WEATHER = {"title": "Mild weather for the weekend", "link": "https://wire.example/weather",
           "text": "Sunny skies and light winds are expected."}


def write_config(tmp_path: Path, feeds: list[str], extra: str = "") -> Path:
    (tmp_path / "rules.toml").write_text(RULES, encoding="utf-8")
    lines = ['[storage]', 'path = "data/monitor.db"', "[rules]", 'files = ["rules.toml"]', "[fetch]", "timeout = 5",
             "[schedule]", "jitter = 0", "[web]", 'user = "ana"']
    for url in feeds:
        lines += ["[[feeds]]", f'url = "{url}"']
    path = tmp_path / "monitor.toml"
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def build(httpserver: Any, tmp_path: Path, *, wire: list[dict[str, str]] | None = None,
          other: list[dict[str, str]] | None = None, wire_title: str = "Test Wire") -> Path:
    """Poll two feeds once at NOW; returns the config path."""
    httpserver.expect_request("/wire").respond_with_data(
        rss(wire if wire is not None else [IPO, AZURE, SOFA, DEBUT, WEATHER], title=wire_title),
        content_type="application/rss+xml")
    httpserver.expect_request("/other").respond_with_data(
        rss(other if other is not None else [IPO_B], title="Other Post"), content_type="application/rss+xml")
    path = write_config(tmp_path, [httpserver.url_for("/wire"), httpserver.url_for("/other")])
    config = load_config(path)
    # One feed after the other, so which copy of a story came first (and every id) is the same each run.
    poll_once(config, feed_urls=[httpserver.url_for("/wire")], now=NOW)
    poll_once(config, feed_urls=[httpserver.url_for("/other")], now=NOW)
    return path
