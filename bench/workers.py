"""The 500-feed loopback round through Celery workers (issue 14), beside the single-process pipeline.

The same loopback feeds as bench/cycle.py (bench/feedserver.py: N feeds x 20
items, 50 ms added per request, 304 on a matching ETag) and the same 1,000
rules. Variants, in one run, each in a fresh directory and a fresh store:

  single process   `monitor poll` without [queue] (the embedded default)
  W workers        W `monitor worker --concurrency 1` processes over one Redis
                   (with --threads N: `monitor worker --threads N` each),
                   then `monitor poll` with [queue] (enqueue, wait for every report)

Each variant does round 1 (every item new) and round 2 (every feed 304).
Worker start-up is not timed (they are started and ready before round 1).
All feeds are on one host, so `[fetch] per_host` is raised to 16, as in
bench/cycle.py (with the queue it is a cluster-wide cap).

    python bench/workers.py [--feeds 500] [--workers 1,2,4] [--threads N] [--repeats 1]
                            [--store PATH_OR_URL] [--redis URL]

`--store`: where each variant's store is; `{variant}` in it is replaced by
the variant's name (single, w1, w2, w4), so each starts empty. A path is
written as `[storage] path`; a postgresql:// URL as `[storage] url` (the
PostgreSQL store, once it exists; create the empty databases first).
Default: a SQLite file in each variant's temporary directory. `--redis`: an
existing Redis (flushed before each variant); default: a redis-server
started on a free loopback port for the run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cycle  # noqa: E402
import feedserver  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.1)
    raise SystemExit("redis-server did not start")


def write_config(work: Path, urls: list[str], rules: Path, store: str | None, redis_url: str | None) -> Path:
    lines = []
    if store and store.startswith(("postgresql://", "postgres://")):
        lines += ["[storage]", f'url = "{store}"']
    else:
        lines += ["[storage]", f'path = "{store or "data/monitor.db"}"']
    lines += [
        "[rules]", f'files = ["{rules}"]',
        "[fetch]", "concurrency = 16", "per_host = 16", "timeout = 30",
        "[schedule]", "jitter = 0",
    ]
    if redis_url:
        lines += ["[queue]", f'broker = "{redis_url}"']
    for u in urls:
        lines += ["[[feeds]]", f'url = "{u}"']
    cfg = work / "monitor.toml"
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cfg


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT))


THREADS = 0  # --threads: each worker process runs that many tasks at once in threads


def start_workers(cfg: Path, count: int) -> list[subprocess.Popen[bytes]]:
    procs = []
    how = ["--threads", str(THREADS)] if THREADS else ["--concurrency", "1"]
    for n in range(count):
        log = (cfg.parent / f"worker{n}.log").open("wb")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(cfg), "worker", *how],
            cwd=cfg.parent, env=env(), stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
        ))
    for n, proc in enumerate(procs):
        log_path = cfg.parent / f"worker{n}.log"
        for _ in range(600):
            if "ready." in log_path.read_text(errors="replace"):
                break
            if proc.poll() is not None:
                raise SystemExit(f"worker {n} exited: {log_path.read_text(errors='replace')[-800:]}")
            time.sleep(0.1)
    return procs


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def stored(work: Path, store: str | None) -> int | str:
    path = Path(store) if store and not store.startswith(("postgresql://", "postgres://")) else work / "data" / "monitor.db"
    if store and store.startswith(("postgresql://", "postgres://")):
        return "n/a"
    with sqlite3.connect(path) as con:
        return int(con.execute("SELECT count(*) FROM articles").fetchone()[0])


def run_variant(name: str, workers: int, urls: list[str], rules: Path, store_template: str | None,
                redis_url: str | None) -> dict[str, float | int | str]:
    work = Path(tempfile.mkdtemp(prefix=f"workers-{name}-"))
    store = store_template.replace("{variant}", name) if store_template else None
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if workers and redis_url:
            import redis

            redis.Redis.from_url(redis_url).flushdb()
        cfg = write_config(work, urls, rules, store, redis_url if workers else None)
        if workers:
            procs = start_workers(cfg, workers)
        r1 = cycle.run_cli(ROOT, cfg, "poll")
        r2 = cycle.run_cli(ROOT, cfg, "poll")
        return {"round 1": r1, "round 2 (304)": r2, "stored": stored(work, store)}
    finally:
        stop_workers(procs)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feeds", type=int, default=500)
    ap.add_argument("--entries", type=int, default=20)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--workers", default="1,2,4", help="comma-separated worker process counts")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--store", help="store path or postgresql:// URL per variant ({variant} is replaced)")
    ap.add_argument("--threads", type=int, default=0, help="run each worker process with --threads N")
    ap.add_argument("--redis", help="an existing Redis URL (default: start redis-server for the run)")
    args = ap.parse_args()
    counts = [int(x) for x in args.workers.split(",") if x.strip()]

    server, port = feedserver.start(args.feeds, args.entries, args.latency)
    urls = [f"http://127.0.0.1:{port}/{n}.xml" for n in range(args.feeds)]
    tmp = Path(tempfile.mkdtemp(prefix="workers-bench-"))
    rules = tmp / "rules.toml"
    cycle.rules_file(rules, args.rules)
    redis_proc = None
    global THREADS
    THREADS = args.threads
    redis_url = args.redis
    if redis_url is None:
        redis_proc, redis_url = start_redis(tmp)
    variants = [("single", 0)] + [(f"w{n}", n) for n in counts]
    print(f"{args.feeds} feeds x {args.entries} entries, {args.latency * 1000:.0f} ms latency, {args.rules} rules, "
          f"{args.repeats} repeats; store {args.store or 'SQLite (a file per variant)'}; cores "
          f"{len(os.sched_getaffinity(0))}", flush=True)
    results: dict[str, list[dict[str, float | int | str]]] = {name: [] for name, _ in variants}
    try:
        for rep in range(args.repeats):
            for name, n in variants:
                res = run_variant(name, n, urls, rules, args.store, redis_url)
                results[name].append(res)
                print(f"  repeat {rep + 1}: {name}: " + ", ".join(
                    f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in res.items()), flush=True)
    finally:
        server.terminate()
        if redis_proc is not None:
            redis_proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    base = statistics.median(float(r["round 1"]) for r in results["single"])
    print(f"\n{'variant':<38} {'round 1 s':>10} {'feeds/s':>8} {'round 2 (304) s':>16} {'stored':>7} {'vs single':>9}")
    for name, n in variants:
        r1 = statistics.median(float(r["round 1"]) for r in results[name])
        r2 = statistics.median(float(r["round 2 (304)"]) for r in results[name])
        label = "single process (no queue)" if not n else f"{n} worker process{'es' if n > 1 else ''}"
        if n and THREADS:
            label += f" x {THREADS} threads"
        print(f"{label:<38} {r1:>10.2f} {args.feeds / r1:>8.1f} {r2:>16.2f} {results[name][-1]['stored']!s:>7} "
              f"{base / r1:>8.2f}×")


if __name__ == "__main__":
    main()
