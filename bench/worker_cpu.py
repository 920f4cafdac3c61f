"""Worker CPU per entry: what one parser process spends on each stage, this checkout beside another.

Runs `parse_clean_tag` (parse, clean, tag with 1,000 rules, story key, content
hash) over the bench feeds (generated, as bench/cycle.py serves them) and, when
it is there, the shared corpus of real feeds (read in place, never copied);
then each stage on its own, and the pickling of the results a worker sends
back to the writer (size and dumps+loads time). Each checkout runs in its own
process; with `--baseline DIR` the two alternate, in shuffled order each
repeat, so machine drift hits both alike: read the ratios.

    python bench/worker_cpu.py [--feeds 100] [--entries 20] [--repeats 3] [--baseline DIR] [--no-corpus] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "feeds"


def bodies(feeds: int, entries: int, corpus: bool = True) -> list[tuple[str, bytes]]:
    import feedserver  # bench/, on the path in the parent only

    rng = random.Random(3)
    out = [(f"bench/{n}", feedserver.make_feed(n, entries, rng)) for n in range(feeds)]
    if corpus and (CORPUS / "MANIFEST.tsv").is_file():
        for line in (CORPUS / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()[1:]:
            name = line.split("\t", 1)[0]
            out.append((f"corpus/{name}", (CORPUS / name).read_bytes()))
    return out


def measure(data_dir: str, rules_path: str, profile: bool) -> dict[str, float]:
    """In a child whose sys.path starts at the checkout measured."""
    import gc
    import pickle
    import time
    from datetime import datetime, timezone

    from monitor.clean import to_article
    from monitor.parse import FeedError, parse_feed
    from monitor.pipeline import parse_clean_tag, tag_article
    from monitor.stories import story_key
    from rules import load_rules

    ruleset = load_rules([Path(rules_path)])
    feeds = pickle.loads(Path(data_dir, "bodies.pickle").read_bytes())
    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    out: dict[str, float] = {}
    gc.collect()

    t = time.process_time()
    results = [parse_clean_tag(ruleset, body, "https://bench.example/" + name, None, name, now, True) for name, body in feeds]
    out["parse_clean_tag s"] = time.process_time() - t
    out["entries"] = sum(len(r.items) for r in results)

    t = time.process_time()
    blobs = [pickle.dumps(r, pickle.HIGHEST_PROTOCOL) for r in results]
    for b in blobs:
        pickle.loads(b)
    out["pickle s"] = time.process_time() - t
    out["pickle MB"] = sum(map(len, blobs)) / 1e6
    del results, blobs

    parsed = []
    for part in ("bench", "corpus"):
        t = time.process_time()
        for name, body in feeds:
            if not name.startswith(part):
                continue
            try:
                parsed.append((name, parse_feed(body, "https://bench.example/" + name, None)))
            except FeedError:
                pass
        out[f"parse ({part}) s"] = time.process_time() - t

    t = time.process_time()
    articles = [(name, to_article(e, base_url="https://bench.example/" + name, fetched_at=now))
                for name, p in parsed for e in p.entries]
    out["clean s"] = time.process_time() - t

    t = time.process_time()
    for name, a in articles:
        tag_article(ruleset, a, name)
    out["tag s"] = time.process_time() - t

    t = time.process_time()
    for _, a in articles:
        story_key(a.title, a.text, a.published)
    out["story key s"] = time.process_time() - t

    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        for name, body in feeds:
            parse_clean_tag(ruleset, body, "https://bench.example/" + name, None, name, now, True)
        prof.disable()
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feeds", type=int, default=100)
    ap.add_argument("--entries", type=int, default=20)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline", type=Path, help="another checkout of the code to run beside this one")
    ap.add_argument("--no-corpus", action="store_true", help="the generated bench feeds only (what bench/cycle.py serves)")
    ap.add_argument("--profile", action="store_true", help="cProfile of parse_clean_tag, to stderr (this checkout)")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        # The script's folder (bench/, with its own rules.py) must not shadow the package `rules`.
        here = Path(__file__).resolve().parent
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
        print(json.dumps(measure(args.child[0], args.child[1], args.profile)))
        return

    import pickle

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import cycle

    with tempfile.TemporaryDirectory(prefix="worker-cpu-") as tmp:
        Path(tmp, "bodies.pickle").write_bytes(pickle.dumps(bodies(args.feeds, args.entries, not args.no_corpus)))
        rules = Path(tmp, "rules.toml")
        cycle.rules_file(rules, args.rules)
        codes = [("this checkout", ROOT)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
        runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in codes}
        rng = random.Random(1)
        for rep in range(args.repeats):
            order = codes[:]
            rng.shuffle(order)
            for name, code in order:
                env = dict(os.environ, PYTHONPATH=str(code))
                cmd = [sys.executable, __file__, "--child", tmp, str(rules)]
                if args.profile and name == "this checkout" and rep == 0:
                    cmd.append("--profile")
                r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
                if r.returncode != 0:
                    raise SystemExit(f"{name}: {r.stderr[-2000:]}")
                if args.profile and "--profile" in cmd:
                    sys.stderr.write(r.stderr)
                runs[name].append(json.loads(r.stdout))
    keys = list(runs[codes[0][0]][0])
    print(f"{args.feeds} bench feeds x {args.entries} items{'' if args.no_corpus else ' + corpus'}, {args.rules} rules, "
          f"medians of {args.repeats} (CPU seconds of one process)")
    print(f"{'':22}" + "".join(f"{name:>16}" for name, _ in codes) + ("      ratio" if len(codes) > 1 else ""))
    for k in keys:
        meds = [statistics.median(r[k] for r in runs[name]) for name, _ in codes]
        line = f"{k:22}" + "".join(f"{m:16.3f}" for m in meds)
        if len(meds) > 1 and meds[0] and k.endswith(" s"):
            line += f"  {meds[1] / meds[0]:8.2f}x"
        print(line)
    per = {name: statistics.median(r["parse_clean_tag s"] for r in runs[name]) / runs[name][0]["entries"] * 1000
           for name, _ in codes}
    print("ms per entry (parse_clean_tag): " + ", ".join(f"{n} {v:.3f}" for n, v in per.items()))


if __name__ == "__main__":
    main()
