"""A local feed server for benchmarks: N synthetic RSS feeds with latency and ETags.

Runs in its own process so it does not compete with the client for the GIL.
Feed text is generated from a made-up vocabulary (no third-party text).
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import random
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

# Everyday function words mixed with a large made-up vocabulary; one item in
# ten also carries a sentence about the partnership, as a real tech feed would. (An all-keyword vocabulary
# measures the rules' worst case instead; bench/rules.py covers that.)
WORDS = (
    "the a of and to in for on with as by at from that this it is was will could would said says report "
    "company companies market markets billion million year years week new more than after before about "
    "city council weather traffic school teachers students league season coach players match goal fans "
    "museum exhibition artist music festival film director actor series episode review recipe kitchen "
    "garden travel train airport flight hotel beach mountain river bridge road budget tax housing rent "
    "hospital doctors patients research study scientists space telescope planet energy solar wind grid "
    "phone laptop chip battery camera update software app game console store price sale shoppers retail "
    "police court judge trial election vote minister parliament policy border trade tariff bank rates"
).split()
RELEVANT = [
    "Microsoft and OpenAI are renegotiating the terms of their partnership, people familiar with the talks said.",
    "OpenAI is preparing for a possible initial public offering, according to two people briefed on the plans.",
    "Azure remains the exclusive cloud provider for OpenAI under the current agreement with Microsoft.",
    "Elon Musk's lawsuit against OpenAI over its conversion to a for-profit company goes to trial.",
    "OpenAI plans to restructure as a public benefit corporation while its nonprofit keeps control.",
]


def _vocabulary(size: int = 6000) -> list[str]:
    """Made-up words (syllable pairs and triples): a news-sized vocabulary, so two
    unrelated items share few words, as in real feeds."""
    syl = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]
    rng = random.Random(11)
    out: set[str] = set()
    while len(out) < size:
        out.add("".join(rng.choice(syl) for _ in range(rng.choice((2, 3)))))
    return sorted(out)


VOCABULARY = WORDS[:50] + _vocabulary()


def make_feed(n: int, entries: int, rng: random.Random) -> bytes:
    base = datetime(2026, 11, 20, tzinfo=timezone.utc)
    items = []
    for i in range(entries):
        title = " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(6, 12))).capitalize()
        paras = "".join(
            "<p>" + " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(40, 80))) + ".</p>" for _ in range(4)
        )
        if i % 10 == 0:
            # A partnership sentence inside an otherwise distinct item: each is its own story, as most
            # items are (a cluster of hundreds of copies would measure story grouping, not ingest).
            sentence = RELEVANT[(n + i) % len(RELEVANT)]
            paras = f"<p>{sentence}</p>" + paras
        items.append(
            f"<item><title>{escape(title)}</title><link>https://bench.example/{n}/{i}?utm_source=rss</link>"
            f"<guid>bench-{n}-{i}</guid><pubDate>{format_datetime(base - timedelta(minutes=i))}</pubDate>"
            f"<description>{escape(paras[:300])}</description>"
            f"<content:encoded><![CDATA[{paras}<script>track()</script>]]></content:encoded></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        f"<title>Bench feed {n}</title><link>https://bench.example/{n}</link><description>d</description>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


_TYPES = {".atom": "application/atom+xml", ".json": "application/feed+json", ".rdf": "application/rdf+xml",
          ".html": "text/html"}


def folder_files(folder: str) -> list[Path]:
    """The feed files of a folder (the corpus's `wellformed/`, say), in the order `/{n}.xml` serves them."""
    return sorted(f for f in Path(folder).iterdir() if f.is_file() and f.suffix not in (".md", ".tsv"))


def _serve(port_q: "mp.Queue[int]", feeds: int, entries: int, latency: float, folder: str | None = None) -> None:
    rng = random.Random(7)
    if folder is None:
        bodies = [make_feed(n, entries, rng) for n in range(feeds)]
        types = ["application/rss+xml; charset=utf-8"] * feeds
    else:  # real files, read in place (never copied anywhere), each with the type its extension says
        files = folder_files(folder)
        bodies = [f.read_bytes() for f in files]
        types = [_TYPES.get(f.suffix, "application/xml") for f in files]
    etags = ['"' + hashlib.sha1(b).hexdigest()[:16] + '"' for b in bodies]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            time.sleep(latency)
            try:
                n = int(self.path.strip("/").split(".")[0])
                body, etag = bodies[n], etags[n]
            except (ValueError, IndexError):
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", types[n])
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer.request_queue_size = 256
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_q.put(server.server_address[1])
    server.serve_forever()


def start(feeds: int, entries: int, latency: float, folder: str | None = None) -> tuple[mp.Process, int]:
    """Start the server process; returns it and its port (on 127.0.0.1). `folder`: serve its files instead."""
    q: mp.Queue[int] = mp.Queue()
    proc = mp.Process(target=_serve, args=(q, feeds, entries, latency, folder), daemon=True)
    proc.start()
    return proc, q.get(timeout=120)
