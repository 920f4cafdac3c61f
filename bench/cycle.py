"""The whole cycle, as a user runs it: `monitor poll` twice, then `monitor digest`, beside a naive stack.

500 loopback feeds x 20 items (bench/feedserver.py, 50 ms added per request,
304 on a matching ETag), 1,000 rules (the 25 shipped ones plus 975 made-up
watch-list rules, 10% of whose terms occur in the feeds), stories on and off.
Each variant is real `python -m monitor` subprocesses in a fresh directory:

  round 1   `monitor poll`                 every item new
  round 2   `monitor poll`                 every feed answers 304
  digest    `monitor digest --date ... --no-deliver`

`--baseline DIR` also runs the same CLI from another checkout of the code
(for example `git archive main | tar -x -C /tmp/base`), in the same run, so
"before" and "after" share the machine's state. Variants run interleaved, in
a shuffled order each repeat; figures are medians of `--repeats` (min-max).

The naive stack (the obvious script): sequential `requests`, feedparser with
its defaults, BeautifulSoup text per field, one INSERT + commit per article,
no conditional GET, no tagging; its "digest" is a SELECT of the day's rows
written out as Markdown.

All feeds are on one host (127.0.0.1), so `[fetch] per_host` is raised to
the concurrency (16): on the real web 500 feeds sit on hundreds of hosts.

    python bench/cycle.py [--feeds 500] [--entries 20] [--rules 1000] [--repeats 3] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import feedserver  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DIGEST_DAY = "2026-11-19"  # the bench feeds date their items 2026-11-20 00:00 minus i minutes


def rules_file(path: Path, count: int) -> None:
    """The shipped rules plus made-up watch-list rules up to `count` in all."""
    shipped = (ROOT / "rules" / "partnership.toml").read_text(encoding="utf-8")
    have = shipped.count("\n[[rules]]")
    rng = random.Random(5)
    vocab = feedserver.VOCABULARY[50:]
    lines = [shipped]
    for n in range(count - have):
        # 10% of terms occur in the feeds, 90% are made-up words no feed has (a watch list).
        def term() -> str:
            w = rng.choice(vocab)
            return w if rng.random() < 0.1 else w[::-1] + "x"

        shape = n % 3
        if shape == 0:
            query = term()
        elif shape == 1:
            query = f"{term()} AND ({term()} OR {term()})"
        else:
            query = f'"{term()} {term()}" OR {term()}'
        lines.append(
            f'\n[[rules]]\nname = "watch-{n}"\ntags = ["watch"]\nquery = \'{query}\'\nweight = 1.0\nsource = "bench"\n'
        )
    path.write_text("".join(lines), encoding="utf-8")


def write_config(workdir: Path, urls: list[str], rules: Path, stories: bool) -> Path:
    lines = [
        "[storage]", 'path = "data/monitor.db"',
        "[rules]", f'files = ["{rules}"]',
        "[fetch]", "concurrency = 16", "per_host = 16", "timeout = 30",
        "[schedule]", "jitter = 0",
        "[stories]", f"enabled = {'true' if stories else 'false'}",
    ]
    for u in urls:
        lines += ["[[feeds]]", f'url = "{u}"']
    cfg = workdir / "monitor.toml"
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cfg


def run_cli(code: Path, cfg: Path, *args: str) -> float:
    env = dict(os.environ, PYTHONPATH=str(code))
    t = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(cfg), *args],
        cwd=cfg.parent, env=env, capture_output=True, text=True,
    )
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{code}: monitor {' '.join(args)} failed ({r.returncode}): {r.stderr[-800:]}")
    return dt


def run_ours(code: Path, urls: list[str], rules: Path, stories: bool) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="cycle-"))
    try:
        cfg = write_config(work, urls, rules, stories)
        r1 = run_cli(code, cfg, "poll")
        r2 = run_cli(code, cfg, "poll")
        dg = run_cli(code, cfg, "digest", "--date", DIGEST_DAY, "--no-deliver")
        con = sqlite3.connect(work / "data" / "monitor.db")
        stored = con.execute("SELECT count(*) FROM articles").fetchone()[0]
        con.close()
        return {"round 1": r1, "round 2 (304)": r2, "digest": dg, "cycle": r1 + dg, "stored": stored}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_naive(urls: list[str]) -> dict[str, float]:
    import feedparser
    import requests
    from bs4 import BeautifulSoup

    work = Path(tempfile.mkdtemp(prefix="cycle-naive-"))
    try:
        t = time.perf_counter()
        conn = sqlite3.connect(work / "naive.db")
        conn.execute(
            "CREATE TABLE articles (guid TEXT PRIMARY KEY, url TEXT, title TEXT, summary TEXT, content TEXT, "
            "published TEXT)"
        )
        session = requests.Session()

        def poll() -> None:
            for u in urls:
                parsed = feedparser.parse(session.get(u, timeout=30).content)
                for e in parsed.entries:
                    text = [BeautifulSoup(e.get(k, ""), "html.parser").get_text(" ", strip=True) for k in ("title", "summary")]
                    content = " ".join(
                        BeautifulSoup(c.value, "html.parser").get_text(" ", strip=True) for c in e.get("content", [])
                    )
                    conn.execute(
                        "INSERT OR REPLACE INTO articles VALUES (?, ?, ?, ?, ?, ?)",
                        (e.get("id"), e.get("link"), *text, content, e.get("published")),
                    )
                    conn.commit()

        poll()
        r1 = time.perf_counter() - t
        t = time.perf_counter()
        poll()
        r2 = time.perf_counter() - t
        t = time.perf_counter()
        rows = conn.execute("SELECT title, url, summary FROM articles ORDER BY published").fetchall()
        (work / "digest.md").write_text("".join(f"- [{a}]({b})\n  {c[:200]}\n" for a, b, c in rows), encoding="utf-8")
        dg = time.perf_counter() - t
        stored = len(rows)
        conn.close()
        return {"round 1": r1, "round 2 (304)": r2, "digest": dg, "cycle": r1 + dg, "stored": stored}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feeds", type=int, default=500)
    ap.add_argument("--entries", type=int, default=20)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline", type=Path, help="another checkout of the code to run beside this one")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--only", choices=["on", "off"], help="only stories on or off")
    args = ap.parse_args()

    server, port = feedserver.start(args.feeds, args.entries, args.latency)
    urls = [f"http://127.0.0.1:{port}/{n}.xml" for n in range(args.feeds)]
    tmp = Path(tempfile.mkdtemp(prefix="cycle-rules-"))
    rules = tmp / "rules.toml"
    rules_file(rules, args.rules)
    codes = [("this checkout", ROOT)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
    settings = [s for s in (True, False) if args.only is None or args.only == ("on" if s else "off")]
    variants: list[tuple[str, object]] = [
        (f"{label}, stories {'on' if s else 'off'}", (code, s)) for label, code in codes for s in settings
    ]
    if not args.skip_naive:
        variants.append(("naive stack (no tagging)", None))
    print(f"{args.feeds} feeds x {args.entries} entries, {args.latency * 1000:.0f} ms latency, {args.rules} rules, "
          f"{args.repeats} repeats, variants interleaved in shuffled order", flush=True)
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in variants}
    rng = random.Random(3)
    try:
        for rep in range(args.repeats):
            order = variants[:]
            rng.shuffle(order)
            for name, spec in order:
                if spec is None:
                    res = run_naive(urls)
                else:
                    code, stories = spec  # type: ignore[misc]
                    res = run_ours(code, urls, rules, stories)
                results[name].append(res)
                print(f"  repeat {rep + 1}: {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in res.items()), flush=True)
    finally:
        server.terminate()
        shutil.rmtree(tmp, ignore_errors=True)

    def med(name: str, key: str) -> tuple[float, float, float]:
        xs = [r[key] for r in results[name]]
        return statistics.median(xs), min(xs), max(xs)

    naive = "naive stack (no tagging)"
    print(f"\n{'variant':<36} {'round 1 s':>18} {'round 2 (304) s':>18} {'digest s':>16} {'poll+digest s':>18} {'× naive':>8}")
    for name, _ in variants:
        cells = []
        for key in ("round 1", "round 2 (304)", "digest", "cycle"):
            m, lo, hi = med(name, key)
            cells.append(f"{m:.2f} ({lo:.2f}-{hi:.2f})")
        ratio = f"{med(naive, 'cycle')[0] / med(name, 'cycle')[0]:.2f}×" if naive in results and results[naive] else ""
        print(f"{name:<36} {cells[0]:>18} {cells[1]:>18} {cells[2]:>16} {cells[3]:>18} {ratio:>8}")
    print(f"peak RSS of the largest child process: {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
