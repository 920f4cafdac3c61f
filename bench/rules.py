"""Benchmark: rule matching speed as the rule set grows, beside a naive baseline.

Generates ~5,000 synthetic articles of 2-4 KB from a made-up vocabulary
(pseudo-words built from syllables, drawn with Zipf-like frequencies: no
third-party text) and nested rule sets of 10, 100, 1,000 and 10,000 rules
(words, phrases, prefixes, case-sensitive terms, AND/OR/NOT and NEAR). For
each size it prints articles/s and MB/s of `RuleSet.evaluate` and of a naive
baseline (one compiled regex per term, every rule evaluated for every
article), in the same run, plus the per-article cost relative to 10 rules.

    python bench/rules.py [--articles 5000] [--cap 5] [--profile realistic|high-hit] [--no-corpus]

"realistic": 10% of rule terms are content words of the articles (frequency
ranks 300-6,000, as names and topic words are), 90% never occur (a watch
list). "high-hit": every term is drawn from the 4,000 most frequent words,
function-word-like ones included: a worst case where many rules match every
article. The
naive baseline is capped at --cap seconds per size (and at least 20
articles), so it times fewer articles at large sizes.

The synthetic articles are ASCII; real ones mostly are not (curly quotes,
dashes, accents), which takes other code paths. So when the shared feed
corpus is beside the project (../shared/corpus/feeds), the run ends with the
shipped default rules over every entry of its well-formed feeds, parsed and
cleaned as the pipeline does, beside the naive baseline on the same entries.
The corpus is read in place, never copied.
"""

from __future__ import annotations

import argparse
from bisect import bisect_right
import gc
import random
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rules import Rule, RuleSet, build_ruleset, default_rule_files, load_rules, parse_query  # noqa: E402
from rules.query import And, Near, Node, Not, Or, Term  # noqa: E402

# Onset-vowel-coda syllables give a vocabulary with roughly the substring
# overlap of real words ("data" inside "database"), not far more.
ONSETS = ["b", "br", "c", "ch", "d", "dr", "f", "fl", "g", "gr", "h", "j", "k", "l", "m", "n", "p", "pl", "qu",
          "r", "s", "sh", "st", "t", "th", "tr", "v", "w", "y", "z", ""]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "oo", "y"]
CODAS = ["", "", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ck", "ng", "rt"]
SYLLABLES = sorted({o + v + c for o in ONSETS for v in VOWELS for c in CODAS})


def make_vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.choice([1, 2, 2, 2, 3, 3]))))
    return sorted(words)


def make_articles(rng: random.Random, vocab: list[str], count: int) -> list[dict[str, str]]:
    weights = [1.0 / (rank + 1) for rank in range(len(vocab))]  # Zipf-like
    cum = list(_accumulate(weights))
    articles = []
    for _ in range(count):
        target = rng.randint(2000, 4000)
        words: list[str] = []
        length = 0
        while length < target:
            sentence = rng.choices(vocab, cum_weights=cum, k=rng.randint(6, 18))
            sentence[0] = sentence[0].capitalize()
            piece = " ".join(sentence) + rng.choice([".", ".", ",", ";", "'s."])
            words.append(piece)
            length += len(piece) + 1
        title = " ".join(rng.choices(vocab, cum_weights=cum, k=8)).capitalize()
        articles.append({"title": title, "text": " ".join(words)})
    return articles


def _accumulate(values: list[float]) -> list[float]:
    out, total = [], 0.0
    for v in values:
        total += v
        out.append(total)
    return out


def make_queries(rng: random.Random, vocab: list[str], count: int, profile: str) -> list[str]:
    frequent = vocab[:4000]
    content = vocab[300:6000]

    def word() -> str:
        if profile == "high-hit":
            return rng.choice(frequent)
        if rng.random() < 0.1:
            return rng.choice(content)
        return rng.choice(frequent)[::-1] + "x"  # never occurs in the articles

    def term() -> str:
        r = rng.random()
        if r < 0.15:
            return f'"{word()} {word()}"'
        if r < 0.25:
            w = word()
            return w[:5] + "*" if len(w) >= 6 else w
        if r < 0.3:
            return "=" + word().capitalize()
        return word()

    queries = []
    for _ in range(count):
        r = rng.random()
        if r < 0.4:
            queries.append(term())
        elif r < 0.6:
            queries.append(f"{term()} AND ({term()} OR {term()})")
        elif r < 0.8:
            queries.append(f"{term()} NEAR/10 ({term()} OR {term()})")
        else:
            queries.append(f"({term()} OR {term()}) NOT title:{term()}")
    return queries


def build(queries: list[str]) -> RuleSet:
    rules = [Rule(f"r{i}", ("t",), q, 1.0, parse_query(q)) for i, q in enumerate(queries)]
    return build_ruleset(rules, threshold=1.0)


# ---------------------------------------------------------------- naive baseline


class Naive:
    """One compiled regex per term; every rule evaluated against every article."""

    def __init__(self, ruleset: RuleSet):
        self.rules = ruleset.rules
        self.regex: dict[tuple[str, str | None, bool], re.Pattern[str]] = {}

    def pattern(self, term: Term) -> re.Pattern[str]:
        p = self.regex.get(term.ident)
        if p is None:
            body = r"\s+".join(re.escape(w) for w in term.text.split(" "))
            flags = 0 if term.exact is not None else re.IGNORECASE
            p = re.compile(r"(?<!\w)" + body + (r"\w*" if term.prefix else r"(?!\w)"), flags)
            self.regex[term.ident] = p
        return p

    def ev(self, node: Node, fields: dict[str, str]) -> bool:
        if isinstance(node, Term):
            return any(self.pattern(node).search(fields.get(f, "")) for f in node.fields)
        if isinstance(node, And):
            return all(self.ev(c, fields) for c in node.children)
        if isinstance(node, Or):
            return any(self.ev(c, fields) for c in node.children)
        if isinstance(node, Not):
            return not self.ev(node.child, fields)
        assert isinstance(node, Near)
        return self.near(node, fields)

    def near(self, node: Near, fields: dict[str, str]) -> bool:
        def occ(n: Node) -> list[tuple[str, int, int]]:
            terms = [n] if isinstance(n, Term) else [c for c in n.children if isinstance(c, Term)]  # type: ignore[union-attr]
            return [
                (f, m.start(), m.end())
                for t in terms
                for f in t.fields
                for m in self.pattern(t).finditer(fields.get(f, ""))
            ]

        for fa, sa, ea in occ(node.left):
            for fb, sb, eb in occ(node.right):
                if fa == fb and (ea <= sb or eb <= sa):
                    # word index = how many words start at or before a position ("OpenAI's" is one word)
                    starts = [m.start() for m in re.finditer(r"\w+(?:['\-]\w+)*", fields[fa])]
                    first_end, second_start = (ea, sb) if ea <= sb else (eb, sa)
                    gap = bisect_right(starts, second_start) - bisect_right(starts, first_end - 1)
                    if gap <= node.distance:
                        return True
        return False

    def evaluate(self, fields: dict[str, str]) -> int:
        return sum(1 for r in self.rules if self.ev(r.node, fields))


# ---------------------------------------------------------------- timing


def time_engine(rs: RuleSet, articles: list[dict[str, str]], rounds: int) -> list[float]:
    rates = []
    for _ in range(rounds):
        gc.collect()
        start = time.perf_counter()
        for a in articles:
            rs.evaluate(a)
        rates.append(len(articles) / (time.perf_counter() - start))
    return rates


def time_naive(naive: Naive, articles: list[dict[str, str]], cap: float) -> tuple[float, int]:
    gc.collect()
    start = time.perf_counter()
    done = 0
    for a in articles:
        naive.evaluate(a)
        done += 1
        if done >= 20 and time.perf_counter() - start > cap:
            break
    return done / (time.perf_counter() - start), done


CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "feeds" / "wellformed"


def corpus_fields(folder: Path) -> list[dict[str, str]]:
    """Every entry of the corpus feeds as the fields the pipeline tags."""
    from datetime import datetime, timezone

    from monitor.clean import to_article
    from monitor.parse import FeedError, parse_feed
    from monitor.pipeline import rule_fields

    fetched = datetime(2030, 1, 1, tzinfo=timezone.utc)
    out = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            feed = parse_feed(path.read_bytes(), "https://corpus.example/feed")
        except FeedError:
            continue
        for raw in feed.entries:
            a = to_article(raw, base_url="https://corpus.example/feed", fetched_at=fetched)
            out.append(rule_fields(title=a.title, text=a.text, author=a.author, url=a.url, feed=feed.title or ""))
    return out


def bench_corpus(rounds: int, cap: float) -> None:
    fields = corpus_fields(CORPUS)
    rs = load_rules(default_rule_files())
    mb = sum(len(v) for f in fields for v in f.values()) / 1e6
    non_ascii = sum(not all(v.isascii() for v in f.values()) for f in fields)
    print()
    print(f"Default rules ({len(rs)}) over the corpus feeds: {len(fields)} entries, {mb:.1f} MB, "
          f"{non_ascii / len(fields):.0%} with non-ASCII text; median of {rounds} rounds")
    print()
    print("| | articles/s | µs/article | flagged | with a match |")
    print("|---|---|---|---|---|")
    taggings = [rs.evaluate(f) for f in fields]
    rates = time_engine(rs, fields, rounds)
    rate = statistics.median(rates)
    print(f"| engine | {rate:,.0f} ({min(rates):,.0f}–{max(rates):,.0f}) | {1e6 / rate:.1f} "
          f"| {sum(t.flagged for t in taggings)} | {sum(bool(t.matches) for t in taggings)} |")
    naive = Naive(rs)
    for f, t in list(zip(fields, taggings))[:50]:
        assert naive.evaluate(f) == len({m.rule for m in t.matches})
    naive_rate, timed = time_naive(naive, fields, cap)
    print(f"| naive ({timed} timed) | {naive_rate:,.0f} | {1e6 / naive_rate:.1f} | | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=5000)
    parser.add_argument("--cap", type=float, default=5.0, help="seconds per size for the naive baseline")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", choices=["realistic", "high-hit"], default="realistic")
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-corpus", action="store_true", help="skip the default rules over the shared feed corpus")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    vocab = make_vocabulary(rng, 12000)
    articles = make_articles(rng, vocab, args.articles)
    mb = sum(len(a["title"]) + len(a["text"]) for a in articles) / 1e6
    sizes = [int(s) for s in args.sizes.split(",")]
    all_queries = make_queries(rng, vocab, max(sizes), args.profile)
    print(f"python {sys.version.split()[0]}, {len(articles)} articles, {mb:.1f} MB "
          f"({mb * 1e6 / len(articles) / 1000:.1f} KB average), profile {args.profile}, "
          f"median of {args.rounds} rounds; naive capped at {args.cap:g} s")
    print()
    header = (f"| rules | build s | engine articles/s | engine MB/s | per-article µs | vs 10 rules "
              f"| matching rules/article | naive articles/s (n timed) | speed-up |")
    print(header)
    print("|" + "---|" * 9)
    base_cost = None
    for size in sizes:
        queries = all_queries[:size]  # nested: each set contains the smaller ones
        t0 = time.perf_counter()
        rs = build(queries)
        build_s = time.perf_counter() - t0
        rates = time_engine(rs, articles, args.rounds)
        rate = statistics.median(rates)
        cost = 1e6 / rate
        base_cost = base_cost or cost
        hits = statistics.mean(len({m.rule for m in rs.evaluate(a).matches}) for a in articles[:200])
        naive = Naive(rs)
        # agreement check on a sample: the engine and the baseline fire the same rules
        for a in articles[:5]:
            assert naive.evaluate(a) == len({m.rule for m in rs.evaluate(a).matches})
        naive_rate, timed = time_naive(naive, articles, args.cap)
        print(f"| {size:,} | {build_s:.3f} | {rate:,.0f} ({min(rates):,.0f}–{max(rates):,.0f}) "
              f"| {rate * mb / len(articles):.1f} | {cost:.1f} | {cost / base_cost:.2f}× | {hits:.1f} "
              f"| {naive_rate:,.1f} ({timed}) | {rate / naive_rate:,.0f}× |", flush=True)
    if not args.no_corpus and CORPUS.is_dir():
        bench_corpus(args.rounds, args.cap)


if __name__ == "__main__":
    main()
