"""Configured feeds at scale: the sync of [[feeds]] into the database, `monitor status` and `monitor digest`.

For each size (default 10,000 and 100,000 feeds in the config) and each
checkout of the code (this one, and `--baseline DIR` beside it, interleaved
in the same run), in a fresh directory:

  first sync       the config's feeds enter an empty database (in-process, `service.open_store`)
  unchanged sync   what every round pays when the config did not change
  one feed added   the config changed by one feed
  status           `monitor status --json` (a subprocess, start-up included)
  digest           `monitor digest --date ... --no-deliver` (a subprocess)

The feeds are never fetched: the figures are the database work a round or a
command does before any network. Median of --repeats (min-max).

    python bench/feeds_sync.py [--sizes 10000,100000] [--repeats 3] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import sys, time, json
from datetime import datetime, timezone
from monitor.config import load_config
from monitor.service import open_store
cfg_path, extra = sys.argv[1], sys.argv[2]
now = datetime(2026, 11, 20, tzinfo=timezone.utc)
out = {}
t = time.perf_counter(); open_store(load_config(cfg_path), now=now).close(); out["first sync"] = time.perf_counter() - t
cfg = load_config(cfg_path)
t = time.perf_counter(); open_store(cfg, now=now).close(); out["unchanged sync"] = time.perf_counter() - t
open(cfg_path, "a").write(extra)
cfg = load_config(cfg_path)
t = time.perf_counter(); open_store(cfg, now=now).close(); out["one feed added"] = time.perf_counter() - t
print(json.dumps(out))
"""


def config(work: Path, n: int) -> Path:
    lines = ["[storage]", 'path = "data/monitor.db"', "[schedule]", "jitter = 0"]
    for i in range(n):
        lines += ["[[feeds]]", f'url = "https://site{i % 997}.example/feeds/{i}.xml"']
    path = work / "monitor.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def measure(code: Path, n: int) -> dict[str, float]:
    import json

    work = Path(tempfile.mkdtemp(prefix="feeds-sync-"))
    env = dict(os.environ, PYTHONPATH=str(code))
    try:
        cfg = config(work, n)
        r = subprocess.run(
            [sys.executable, "-c", CHILD, str(cfg), '[[feeds]]\nurl = "https://new.example/feed.xml"\n'],
            cwd=work, env=env, capture_output=True, text=True,
        )
        if r.returncode:
            raise SystemExit(r.stderr[-800:])
        out: dict[str, float] = json.loads(r.stdout)
        for name, args in (("status", ["status", "--json"]), ("digest", ["digest", "--date", "2026-11-19", "--no-deliver"])):
            t = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "monitor", "--config", str(cfg), *args], cwd=work, env=env,
                               capture_output=True, text=True)
            out[name] = time.perf_counter() - t
            if r.returncode:
                raise SystemExit(f"monitor {name}: {r.stderr[-800:]}")
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline", type=Path)
    args = ap.parse_args()
    codes = [("this checkout", ROOT)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
    keys = ("first sync", "unchanged sync", "one feed added", "status", "digest")
    print(f"{'feeds':>8} {'code':<14} " + " ".join(f"{k:>22}" for k in keys))
    for n in (int(s) for s in args.sizes.split(",")):
        runs: dict[str, list[dict[str, float]]] = {label: [] for label, _ in codes}
        for rep in range(args.repeats):
            for label, code in (codes if rep % 2 == 0 else codes[::-1]):
                runs[label].append(measure(code, n))
        for label, _ in codes:
            cells = []
            for k in keys:
                xs = [r[k] for r in runs[label]]
                cells.append(f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})")
            print(f"{n:>8} {label:<14} " + " ".join(f"{c:>22}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
