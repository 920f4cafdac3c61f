"""Full-text benchmark: what extracting and fetching article pages costs.

Two measurements, each beside its baseline in the same run:
  1. extraction: monitor.fulltext.extract_main_text (readability-lxml, then
     our html_to_text on its result) against html_to_text of the whole page
     (bs4 only, no boilerplate removal), on made-up news pages of about 6, 14
     and 49 KB (nav, sidebars, comments and the article);
  2. a poll of one feed of N items from a loopback server, with
     `full_text = true` (N page fetches) and without it, on fresh databases.

Medians of --rounds runs. The pages are generated here from a small word list.

    python bench/fulltext.py [--rounds 5] [--items 50]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from feedgen import rss, write_config  # noqa: E402

from monitor.clean import html_to_text  # noqa: E402
from monitor.config import load_config  # noqa: E402
from monitor.fulltext import extract_main_text  # noqa: E402
from monitor.service import poll_once  # noqa: E402

WORDS = (
    "cloud deal model board chips talks market growth court stake launch users price rivals plan "
    "partner compute capacity revenue share filing investors lawmakers contract datacenter"
).split()
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)


def sentence(rng: random.Random, n: int = 14) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def page(rng: random.Random, paragraphs: int) -> str:
    nav = "".join(f'<li><a href="/s/{i}">{rng.choice(WORDS)}</a></li>' for i in range(40))
    side = "".join(f'<div class="promo"><a href="/p/{i}">{sentence(rng, 6)}</a></div>' for i in range(15))
    body = "".join(f"<p>{' '.join(sentence(rng) for _ in range(4))}</p>" for _ in range(paragraphs))
    comments = "".join(f'<div class="comment"><p>{sentence(rng, 8)}</p></div>' for _ in range(paragraphs // 2))
    return (
        "<!doctype html><html><head><title>Story</title><script>var a = 1;</script></head><body>"
        f"<header><nav><ul>{nav}</ul></nav></header><aside>{side}</aside>"
        f"<main><article><h1>{sentence(rng, 8)}</h1>{body}</article></main>"
        f'<section id="comments">{comments}</section><footer>{sentence(rng)}</footer></body></html>'
    )


def time_per_page(fn, pages: list[bytes], rounds: int) -> float:
    runs = []
    for _ in range(rounds):
        start = time.perf_counter()
        for p in pages:
            fn(p)
        runs.append((time.perf_counter() - start) / len(pages))
    return statistics.median(runs)


def extraction(rounds: int) -> None:
    rng = random.Random(7)
    print("| page size | pages | readability + text (ms/page) | bs4 whole page, baseline (ms/page) | ratio |")
    print("|---|---|---|---|---|")
    for paragraphs in (6, 25, 100):
        pages = [page(rng, paragraphs).encode() for _ in range(20)]
        size = statistics.mean(len(p) for p in pages) / 1000
        ours = time_per_page(lambda b: extract_main_text(b, "text/html; charset=utf-8"), pages, rounds)
        base = time_per_page(lambda b: html_to_text(b.decode()), pages, rounds)
        print(f"| {size:.0f} KB | {len(pages)} | {ours * 1000:.2f} | {base * 1000:.2f} | {ours / base:.2f}x |")


class _Site(BaseHTTPRequestHandler):
    feed: bytes = b""
    page: bytes = b""

    def do_GET(self) -> None:  # noqa: N802
        body, ctype = (self.feed, "application/rss+xml") if self.path == "/feed" else (self.page, "text/html")
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def polls(rounds: int, items: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    _Site.page = page(random.Random(3), 25).encode()
    _Site.feed = rss([{"title": f"Story {i}", "link": f"{base}/story/{i}", "text": "One line."} for i in range(items)])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        results: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(rounds):
            for full in (False, True):  # interleaved, so drift hits both
                with tempfile.TemporaryDirectory() as tmp:
                    feed = f'[[feeds]]\nurl = "{base}/feed"\n' + ("full_text = true\n" if full else "")
                    cfg = load_config(write_config(Path(tmp), [], extra=feed))
                    start = time.perf_counter()
                    summary = poll_once(cfg, now=NOW)
                    results[full].append(time.perf_counter() - start)
                    assert summary.new == items, summary.line()
        off, on = statistics.median(results[False]), statistics.median(results[True])
        print(f"\n| poll of 1 feed x {items} items (loopback) | median s |")
        print("|---|---|")
        print(f"| full text off (baseline) | {off:.3f} |")
        print(f"| full text on ({items} pages of {len(_Site.page) / 1000:.0f} KB) | {on:.3f} |")
        print(f"| cost per page | {(on - off) / items * 1000:.1f} ms |")
    finally:
        server.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--items", type=int, default=50)
    args = ap.parse_args()
    extraction(args.rounds)
    polls(args.rounds, args.items)


if __name__ == "__main__":
    main()
