"""Peak memory of `monitor run --once` on its first round of 10,000 new feeds (goal: under 400 MB).

Serves N feeds x M items from bench/feedserver.py on 127.0.0.1 and runs the
real CLI with all of them in its config (every feed new, so every one is due).
While it runs, /proc is sampled every 0.2 s: the figures are the monitor
process's own peak (VmHWM) and the peak of the sum of RSS over it and its
parser worker processes. `--baseline DIR` runs another checkout of the code
the same way, in the same run (after this one).

    python bench/run_memory.py [--feeds 10000] [--entries 5] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import feedserver  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def measure(code: Path, urls: list[str]) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="run-memory-"))
    try:
        lines = ["[storage]", 'path = "data/monitor.db"', "[fetch]", "concurrency = 16", "per_host = 16",
                 "[schedule]", "jitter = 0"]
        for u in urls:
            lines += ["[[feeds]]", f'url = "{u}"']
        cfg = work / "monitor.toml"
        cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
        env = dict(os.environ, PYTHONPATH=str(code))
        t = time.perf_counter()
        # stderr to a file, not a pipe: a round of 10,000 feeds logs far more than a pipe holds, and a pipe
        # read only at the end blocked the monitor on its first 64 KB (why the first run never finished).
        log = open(work / "stderr.log", "w+", encoding="utf-8")
        proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(cfg), "run", "--once"], cwd=work,
                                env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
        own = tree = 0
        while proc.poll() is None:
            own = max(own, _status_kb(proc.pid, "VmHWM"))
            tree = max(tree, sum(_status_kb(p, "VmRSS") for p in [proc.pid, *_children(proc.pid)]))
            time.sleep(0.2)
        seconds = time.perf_counter() - t
        log.seek(0)
        tail = log.read()[-800:]
        log.close()
        if proc.returncode:
            raise SystemExit(f"{code}: monitor run --once failed: {tail}")
        return {"seconds": seconds, "own peak MB": own / 1024, "tree peak MB": tree / 1024}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feeds", type=int, default=10000)
    ap.add_argument("--entries", type=int, default=5)
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--baseline", type=Path)
    args = ap.parse_args()
    server, port = feedserver.start(args.feeds, args.entries, args.latency)
    urls = [f"http://127.0.0.1:{port}/{n}.xml" for n in range(args.feeds)]
    print(f"{args.feeds} feeds x {args.entries} entries, `monitor run --once`, first round", flush=True)
    try:
        for label, code in [("this checkout", ROOT)] + ([("baseline", args.baseline.resolve())] if args.baseline else []):
            r = measure(code, urls)
            print(f"{label:<14} " + ", ".join(f"{k} {v:.1f}" for k, v in r.items()), flush=True)
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
