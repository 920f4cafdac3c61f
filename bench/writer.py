"""The writer's own work per new article: `ingest.save_poll` into a real SQLite file, stories on and off.

Feeds come from bench/feedserver.py's generator (made-up text) and go
through the pipeline's pure middle (`parse_clean_tag`: parse, clean, tag
with the default rules, story key, content hash) before anything is timed,
as the worker processes hand them over. Then, timed: the writer thread's
part, for batches of `--batch` feeds in one transaction each (as
`Pipeline._write_batch` does): the decider's reads, story placement and
`Store.apply_poll`. No network, no fetch threads, no workers: only what
the single writer does, so the figure is what bounds a stories-on round.

`--baseline DIR` runs another checkout the same way in the same run, the
variants interleaved for each repeat (the machine is shared: compare the
ratios). `--profile` prints where the writer's time goes (cProfile) for
the first variant's stories-on run.

`--pipeline` times the real `Pipeline.poll` instead (loopback feeds, no
added latency, workers and all): the round's seconds and the writer
thread's seconds in `_write_batch`, wall and CPU (`time.thread_time`: less
moved by the load of a shared machine than wall time), stories on and off.

    python bench/writer.py [--feeds 300] [--entries 20] [--batch 50] [--repeats 3] [--baseline DIR] [--profile]
                           [--pipeline]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _feedserver() -> Any:
    """bench/feedserver.py, with bench/ off the path: it holds scripts named like the project's packages (rules.py)."""
    sys.path[:] = [x for x in sys.path if Path(x or ".").resolve() != HERE]
    spec = importlib.util.spec_from_file_location("feedserver", HERE / "feedserver.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def child(feeds: int, entries: int, batch: int, stories: bool, profile: bool) -> dict[str, float]:
    """Runs with the code under test first on sys.path (PYTHONPATH)."""
    feedserver = _feedserver()

    from monitor.ingest import save_poll
    from monitor.pipeline import parse_clean_tag
    from rules import default_rule_files, load_rules
    from storage import FeedUpdate, Store

    now = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
    ruleset = load_rules(default_rule_files())
    rng = random.Random(5)
    parsed = []
    for n in range(feeds):
        url = f"http://127.0.0.1:1/{n}.xml"
        p = parse_clean_tag(ruleset, feedserver.make_feed(n, entries, rng), url, "application/rss+xml", None, now,
                            stories)
        parsed.append((url, p))
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "w.db")
        rows = [store.add_feed(url, now=now)[0] for url, _ in parsed]
        update = FeedUpdate(status="ok", http_status=200, next_due=now + timedelta(minutes=30))
        prof = None
        if profile:
            import cProfile

            prof = cProfile.Profile()
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        new = 0
        for start in range(0, feeds, batch):
            with store.transaction():
                for row, (_, p) in zip(rows[start:start + batch], parsed[start:start + batch]):
                    stats = save_poll(store, row, update, p.items, now=now, rules_version="bench",
                                      story_keys=p.story_keys or None, hashes=p.hashes or None)
                    new += stats.new
        if prof:
            prof.disable()
        seconds = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in Path(tmp).iterdir())
        store.close()
    if prof:
        import pstats

        st = pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime")
        st.print_stats(14)
        st.print_callers("execute")
    return {"seconds": seconds, "new": new, "ms per article": 1000 * seconds / max(new, 1), "db MB": size / 2**20}


def child_pipeline(feeds: int, entries: int, stories: bool, profile: bool) -> dict[str, float]:
    """The real `Pipeline.poll` over loopback feeds (no latency): round seconds and the writer thread's busy seconds."""
    feedserver = _feedserver()

    from monitor.decide import Policy
    from monitor.fetch import Fetcher, FetchSettings
    from monitor.pipeline import Pipeline
    from rules import default_rule_files, load_rules
    from storage import Store

    server, port = feedserver.start(feeds, entries, 0.0)
    now = datetime(2026, 11, 20, tzinfo=timezone.utc)
    busy, cpu = [0.0], [0.0]  # wall and CPU seconds of the writer thread in _write_batch
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
    original = Pipeline._write_batch

    def timed(self, *a, **kw):  # type: ignore[no-untyped-def]
        t, c = time.perf_counter(), time.thread_time()
        if prof:
            prof.enable()
        try:
            return original(self, *a, **kw)
        finally:
            if prof:
                prof.disable()
            busy[0] += time.perf_counter() - t
            cpu[0] += time.thread_time() - c

    Pipeline._write_batch = timed  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(Path(tmp) / "p.db")
            for n in range(feeds):
                store.add_feed(f"http://127.0.0.1:{port}/{n}.xml", now=now)
            with Fetcher(FetchSettings(pool_size=16, per_host=16)) as fetcher:
                pipeline = Pipeline(store, fetcher, load_rules(default_rule_files()), policy=Policy(jitter=0),
                                    concurrency=16, stories=stories)
                t = time.perf_counter()
                summary = pipeline.poll(store.list_feeds(), now=now)
                seconds = time.perf_counter() - t
            new = sum(f.new for f in summary.feeds)
            store.close()
    finally:
        server.terminate()
    if prof:
        import pstats

        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    return {"seconds": seconds, "new": new, "ms per article": 1000 * cpu[0] / max(new, 1), "db MB": 0.0,
            "writer busy s": busy[0], "writer cpu s": cpu[0]}


def run_variant(code: Path, args: argparse.Namespace, stories: bool, profile: bool) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(code))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--feeds", str(args.feeds), "--entries",
           str(args.entries), "--batch", str(args.batch)] + (["--stories"] if stories else []) + (
        ["--profile"] if profile else []) + (["--pipeline"] if args.pipeline else [])
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"{code}: {out.stderr[-1500:]}")
    if profile:
        print(out.stderr, file=sys.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feeds", type=int, default=300)
    ap.add_argument("--entries", type=int, default=20)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline", type=Path)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--pipeline", action="store_true",
                    help="time the real Pipeline.poll over loopback feeds instead: round s and writer busy s")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--stories", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--only", choices=["on", "off"], help="only stories on or off")
    args = ap.parse_args()
    args.stories_variants = [s for s in (True, False) if args.only is None or args.only == ("on" if s else "off")]
    if args.child:
        if args.pipeline:
            print(json.dumps(child_pipeline(args.feeds, args.entries, args.stories, args.profile)))
        else:
            print(json.dumps(child(args.feeds, args.entries, args.batch, args.stories, args.profile)))
        return
    codes = [("this checkout", ROOT)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
    results: dict[tuple[str, bool], list[dict[str, float]]] = {}
    print(f"{args.feeds} feeds x {args.entries} items, {args.batch} feeds per transaction, "
          f"median of {args.repeats}", flush=True)
    for rep in range(args.repeats):
        order = [(label, code, stories) for label, code in codes for stories in args.stories_variants]
        random.Random(rep).shuffle(order)
        for label, code, stories in order:
            r = run_variant(code, args, stories, args.profile and rep == 0 and label == codes[0][0] and stories)
            results.setdefault((label, stories), []).append(r)
            print(f"  repeat {rep + 1}: {label}, stories {'on' if stories else 'off'}: "
                  + ", ".join(f"{k} {v:.3f}" for k, v in r.items()), flush=True)
    if args.pipeline:
        print("| code | stories | round s | writer busy s (wall) | writer CPU s | writer CPU ms per new article |")
        print("|---|---|---|---|---|---|")
    else:
        print("| code | stories | writer ms per new article | writer s | db MB |")
        print("|---|---|---|---|---|")
    for (label, stories), rs in results.items():
        ms = statistics.median(r["ms per article"] for r in rs)
        s = statistics.median(r["seconds"] for r in rs)
        if args.pipeline:
            busy = statistics.median(r["writer busy s"] for r in rs)
            cpu = statistics.median(r["writer cpu s"] for r in rs)
            print(f"| {label} | {'on' if stories else 'off'} | {s:.2f} | {busy:.2f} | {cpu:.2f} | {ms:.3f} |")
        else:
            print(f"| {label} | {'on' if stories else 'off'} | {ms:.3f} | {s:.2f} | {rs[0]['db MB']:.1f} |")
    for label, _ in codes if args.only is None else []:
        on = statistics.median(r["seconds"] for r in results[(label, True)])
        off = statistics.median(r["seconds"] for r in results[(label, False)])
        print(f"{label}: stories on / off ({'round' if args.pipeline else 'writer'}) = {on / off:.2f}")


if __name__ == "__main__":
    main()
