"""Small builders for test feeds and configs (our own words, made up for the tests)."""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

RULES = '''
threshold = 2.0

[aliases]
openai = ["OpenAI", "ChatGPT"]

[[rules]]
name = "openai-ipo"
tags = ["ipo"]
query = '@openai NEAR/12 (IPO OR "initial public offering")'
weight = 3.0
source = "test"

[[rules]]
name = "azure-exclusive"
tags = ["azure", "partnership"]
query = 'Azure AND exclusiv*'
weight = 2.0
source = "test"
'''


def rss(items: list[dict[str, str]], title: str = "Test Wire") -> bytes:
    parts = []
    for it in items:
        pub = it.get("date") or format_datetime(datetime(2026, 11, 19, 10, 0, tzinfo=timezone.utc))
        parts.append(
            "<item>"
            f"<title>{escape(it['title'])}</title>"
            f"<link>{escape(it['link'])}</link>"
            f"<guid isPermaLink=\"false\">{escape(it.get('guid', it['link']))}</guid>"
            f"<pubDate>{pub}</pubDate>"
            f"<description>{escape(it.get('text', ''))}</description>"
            "</item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>https://wire.example/</link><description>d</description>"
        + "".join(parts)
        + "</channel></rss>"
    ).encode()


def write_config(tmp_path: Path, feeds: list[str], extra: str = "") -> Path:
    (tmp_path / "rules.toml").write_text(RULES, encoding="utf-8")
    lines = [
        "[storage]",
        'path = "data/monitor.db"',
        "[rules]",
        'files = ["rules.toml"]',
        "[fetch]",
        "timeout = 5",
        "[schedule]",
        "jitter = 0",
    ]
    for url in feeds:
        lines += ["[[feeds]]", f'url = "{url}"']
    path = tmp_path / "monitor.toml"
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "feeds"


def wellformed_corpus() -> list[str]:
    """The shared corpus's wellformed feed files (MANIFEST names, relative to CORPUS); [] when it is absent."""
    import csv

    if not (CORPUS / "MANIFEST.tsv").is_file():
        return []
    rows = csv.DictReader((CORPUS / "MANIFEST.tsv").open(encoding="utf-8"), delimiter="\t")
    return sorted(r["file"] for r in rows if r["file"].startswith("wellformed/"))


CORPUS_BASE = "https://corpus.example/feed"


def parsed_corpus() -> list[tuple[str, object]]:
    """(MANIFEST name, ParsedFeed) of every corpus file that parses (FeedError ones left out); [] without it."""
    from monitor.parse import FeedError, parse_feed

    if not (CORPUS / "MANIFEST.tsv").is_file():
        return []
    out = []
    for line in (CORPUS / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        name = line.split("\t", 1)[0]
        try:
            out.append((name, parse_feed((CORPUS / name).read_bytes(), CORPUS_BASE, None)))
        except FeedError:
            continue
    return out
