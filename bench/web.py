"""Web app benchmark: what one suggested edit costs to measure on the stored articles.

The suggestions page measures every candidate edit's effect on the stored
articles. The baseline is a full backtest (every rule re-evaluated on every
article, as `monitor rules backtest` does); the app re-evaluates only the
edited rules (`monitor.web.tuning.edit_flag_changes`). Both run on the same
made-up articles with the shipped rules, interleaved, and must agree.

    python bench/web.py [--articles 3000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.web import tuning  # noqa: E402
from rules import default_rule_files, load_rules  # noqa: E402
from rules.engine import RuleSet  # noqa: E402

WORDS = ("Microsoft OpenAI Azure partnership agreement cloud exclusive model data center revenue share "
         "board investors the a of and to in market analysts said people familiar plans deal court "
         "lawsuit Copilot enterprise API chips capacity gigawatt weather football council budget").split()


def articles(n: int, seed: int = 7) -> list[dict[str, str]]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        title = " ".join(rnd.choice(WORDS) for _ in range(9))
        text = " ".join(rnd.choice(WORDS) for _ in range(450))  # ~3 KB, like a real article
        out.append({"title": title, "text": text, "author": "", "url": "https://news.example/a", "feed": "Wire"})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    before = load_rules(default_rule_files())
    rule = before.rule("ms-openai-in-title") or before.rules[0]  # matches a part of the articles, not all
    edited = [r if r.name != rule.name else type(r)(**{**r.__dict__, "weight": r.weight + 1.0}) for r in before.rules]
    after = RuleSet(edited, threshold=before.threshold, title_weight=before.title_weight, aliases=before.aliases)
    stored = tuning.StoredSet()
    for i, f in enumerate(articles(args.articles)):
        stored.fields[i] = f
        stored.tagging[i] = before.evaluate(f)
    full_t: list[float] = []
    edit_t: list[float] = []
    narrow_t: list[float] = []
    for _ in range(args.rounds):
        t = time.perf_counter()
        full = tuning.backtest(stored, after)
        full_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        counts = tuning.edit_flag_changes(stored, before, after)
        edit_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        narrowed = tuning.edit_flag_changes(stored, before, after, narrowing=True)
        narrow_t.append(time.perf_counter() - t)
        assert counts == narrowed == (len(full.newly_flagged), len(full.no_longer_flagged)), (counts, narrowed)
    f, e, n = statistics.median(full_t), statistics.median(edit_t), statistics.median(narrow_t)
    print(f"{args.articles} articles, edit: weight of {rule.name} +1 ({counts[0]} newly flagged, {counts[1]} unflagged)")
    print(f"full backtest (baseline): {f * 1000:8.1f} ms  ({f / args.articles * 1e6:.0f} us/article)")
    print(f"edited rules only       : {e * 1000:8.1f} ms  ({e / args.articles * 1e6:.0f} us/article)  {f / e:.1f}x faster")
    print(f"... on the articles the rule matched: {n * 1000:8.1f} ms  {f / n:.1f}x faster")


if __name__ == "__main__":
    main()
