"""Stories: group articles about the same event across outlets (near-duplicate detection).

Pure: no database, no clock, no I/O. Times arrive as arguments.

How it works. An article's title and the first 60 words of its text become a
set of content words (stopwords dropped, the title's words counted twice),
hashed stably: its *fingerprint*, kept with the article. A MinHash
signature of that set is cut into LSH bands; each band's hash, scoped to a
7-day period, is a *band key*. Two articles that share any band key are
candidates, found with an index lookup; the period scope keeps the rows a
lookup reads to a few weeks of articles, so placing an article costs the
same whether a thousand or a million are stored. Candidates are then judged
by `same_story` (the exact Jaccard overlap of the fingerprints, plus title
overlap for the less similar) and by the story's span: at most the window
from its first article to its last (`StoryBook`). The shingles a feed
repeats across one fetch are its template and are dropped first
(`template_shingles`, `distinctive_key`); an article matching several
stories merges them, so arrival order does not split a story. The MinHash
only decides who meets whom; no estimate decides a pair.

How to wire it (pipeline + storage)
-----------------------------------
Before writing an article::

    key = story_key(article.title, article.text, article.published)
    # a core.types.StoryKey: the packed fingerprint and the band keys, as the store takes them
    # The band keys are scoped to 7-day periods (`timed_band_keys`): the same
    # list is stored and looked up, and a window longer than `PERIOD` would miss.

Inside the write, the store finds the stored articles sharing a band key within
the window (``Store.story_candidates``) and the ingest decider
(``monitor.ingest.place_stories``) calls ``StoryBook.place`` among them and the
batch's own new articles (a new story when none fits), after
``monitor.ingest.discount_template`` has dropped the fetch's template.
``choose_story`` is the one-candidate-list form, without spans or merging.

The digest and `monitor stories` use the presentation helpers on a story's
members: `lead` (best title: highest score, then earliest), `also_covered`,
`story_rank` and `developing`.

Must not: touch the database, read the clock, or use Python's ``hash()``
(randomised per process: signatures are stored and must be stable).
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from core.types import StoryKey

# --- parameters ---------------------------------------------------------------------------------

NUM_PERM = 64  # the similarity estimate uses all 64 values (std 0.06 at J=0.3)
# LSH over the first 48 values: 24 bands of 2 rows. A pair becomes a candidate with probability
# 1-(1-J^2)^24: 0.90 at J=0.3 (the least similar same-story pairs in the fixtures), 0.99 at 0.43 (their
# median), 0.04 at 0.04 (unrelated pairs' mean). On the fixtures 16 bands reached a pairwise recall
# of 0.73, 24 and 32 bands 0.95; rows of 3 or 4 miss most rewrites.
BANDS = 24
ROWS = 2
# Band keys are scoped to periods this long (see `timed_band_keys`); the window must not exceed it
# (configuration should refuse a longer one: candidates further apart would not be found).
PERIOD = timedelta(days=7)
MAX_WINDOW = PERIOD
LEAD_WORDS = 60  # a long body must not dilute a rewritten lead
DEFAULT_WINDOW = timedelta(days=3)

# same_story thresholds, tuned on tests/data/stories/articles.jsonl (see docs/benchmarks.md, ## Stories),
# on the fingerprints without each outlet's template shingles (what is stored: `distinctive_key`). There,
# same-story pairs resemble each other 0.24-1.0 and different stories published within 3 days of each
# other at most 0.12 (0.16 with the template words kept, as a fetch too small to show a template keeps
# them).
# - SIM_ALONE: this similar is the same story whatever the titles (copies; rewrites that keep the facts
#   but not the headline words, e.g. "OpenAI hires new CFO" / "...names former bank executive as CFO").
# - SIM_WITH_TITLE + TITLE_OVERLAP: between 0.2 and 0.28 the titles must also share a quarter of their
#   content words, which keeps apart two stories about the same companies (titles share 0.07-0.2).
SIM_ALONE = 0.28
SIM_WITH_TITLE = 0.2
TITLE_OVERLAP = 0.25

_MASK32 = 0xFFFFFFFF

_STOP = frozenset(
    """a an and are as at be been but by for from had has have he her his in into is it its
    of on or our over said says she than that the their them they this to up was were which who
    will with would after about more new not no also out we you your i me my than then there these
    those what when where how why all any can could may might must should so such very just do does did
    monday tuesday wednesday thursday friday saturday sunday""".split()
)


# --- text -> shingles ----------------------------------------------------------------------------

_POSSESSIVE = re.compile(r"['\u2019]s\b")
_NON_WORD = re.compile(r"[^\w\s]+")


def words(text: str) -> list[str]:
    """Casefolded words, punctuation stripped ("Microsoft's $10-billion" -> microsoft 10 billion)."""
    text = _POSSESSIVE.sub("", text.casefold())
    return _NON_WORD.sub(" ", text).split()


def _stem(w: str) -> str:
    # Crude plural folding so "novels"/"novel", "sues"/"sue" meet; enough for title overlap.
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    return w


def content_words(text: str) -> set[str]:
    """Words that carry the event: no stopwords, no weekday names, plurals folded."""
    return {_stem(w) for w in words(text) if w not in _STOP}


def _h32(s: str) -> int:
    return zlib.crc32(s.encode("utf-8"))


def _crc_words(prefix: str, toks: list[str]) -> Iterable[int]:
    if prefix:
        return [zlib.crc32((prefix + w).encode("utf-8")) for w in toks]
    return [zlib.crc32(w.encode("utf-8")) for w in toks]


def shingles(title: str, text: str, k: int = 1, *, lead_words: int = LEAD_WORDS) -> set[int]:
    """Stable 32-bit hashes of the article's content-word k-shingles.

    Words are casefolded, stripped of punctuation, stopwords and weekday names
    dropped and plurals folded; then the set holds the k-shingles of the title
    followed by the first `lead_words` words of the text (a long body must not
    dilute a rewritten lead), plus the title's k-shingles again under a prefix
    so the title weighs double.

    k defaults to 1 (content words): measured on the fixtures, two outlets
    telling one event in their own words share 0.32-0.6 of their content
    words but only 0.11-0.25 of their word 3-shingles, which unrelated
    articles about the same companies also reach (0.09). Wire copies score
    high either way.
    """
    t = [_stem(w) for w in words(title) if w not in _STOP]
    body = [_stem(w) for w in words(text)[:lead_words] if w not in _STOP]
    out: set[int] = set()
    for prefix, toks in (("", t + body), ("t:", t)):
        if not toks:
            continue
        if k == 1:
            # The k-shingle of one word is the word itself: no slicing and joining per word.
            out.update(_crc_words(prefix, toks))
            continue
        if len(toks) < k:
            out.add(_h32(prefix + " ".join(toks)))
            continue
        for i in range(len(toks) - k + 1):
            out.add(_h32(prefix + " ".join(toks[i : i + k])))
    return out


# --- MinHash and LSH -----------------------------------------------------------------------------


def signature(shingle_set: Iterable[int], num_perm: int = NUM_PERM) -> tuple[int, ...]:
    """MinHash signature: for each of `num_perm` hash functions, the least hash over the set.

    The i-th hash of a shingle is the i-th 32-bit word (little-endian) of its
    SHAKE-128 digest: independent hash functions, fixed across processes and
    versions. The signature only feeds the LSH band keys; the decision uses
    the exact overlap (`resemblance`). An empty set gives all 0xFFFFFFFF,
    which matches only another empty article.

    Speed (issue 12; the values are the very same, tested against
    `_signature_reference`): each shingle's digest is read as one big integer
    holding the 64 words, split into the even and the odd words, each word in
    a 64-bit lane; then the least value per lane over all shingles is taken
    with a few whole-integer operations per shingle (a SWAR minimum: C loops
    over 2,048 bits instead of 64 Python comparisons). Articles share most of
    their words, so the integers are kept in a bounded per-process cache.
    2.6x faster than the plain form (bench/worker_cpu.py, docs/benchmarks.md).
    """
    xs = list(shingle_set)
    if not xs:
        return (_MASK32,) * num_perm
    if num_perm != NUM_PERM:
        return _signature_reference(xs, num_perm)
    cache, get, even, guard, low1 = _DIGESTS, _DIGESTS.get, _EVEN, _GUARD, _LOW1
    shake = hashlib.shake_128
    e = o = -1
    for x in xs:
        v = get(x)
        if v is None:
            if len(cache) >= _DIGEST_CACHE:
                cache.clear()  # crude but bounded: the common words come back within a few articles
            v = cache[x] = int.from_bytes(shake(x.to_bytes(4, "little")).digest(4 * NUM_PERM), "little")
        e2, o2 = v & even, (v >> 32) & even
        if e < 0:
            e, o = e2, o2
            continue
        # Per 64-bit lane: bit 32 of (e + 2**32 - e2) is set where e >= e2; spread it to a 32-bit mask
        # and take e2 there. No borrow crosses lanes: every lane's result is in [1, 2**33).
        ge = (((e | guard) - e2) >> 32) & low1
        e ^= (e ^ e2) & (ge * _MASK32)
        ge = (((o | guard) - o2) >> 32) & low1
        o ^= (o ^ o2) & (ge * _MASK32)
    return _WORDS.unpack((e | (o << 32)).to_bytes(4 * NUM_PERM, "little"))


def _signature_reference(xs: Sequence[int], num_perm: int = NUM_PERM) -> tuple[int, ...]:
    """The plain statement of `signature` (and its path for other signature lengths)."""
    if not xs:
        return (_MASK32,) * num_perm
    unpack_row = _row_struct(num_perm).unpack
    rows = [unpack_row(hashlib.shake_128(x.to_bytes(4, "little")).digest(4 * num_perm)) for x in xs]
    return tuple(map(min, zip(*rows)))


# The lanes of `signature`: the low 32 bits of every 64-bit lane, bit 32 of every lane, bit 0 of every lane.
_EVEN = int.from_bytes(b"\xff\xff\xff\xff\x00\x00\x00\x00" * (NUM_PERM // 2), "little")
_GUARD = int.from_bytes(b"\x00\x00\x00\x00\x01\x00\x00\x00" * (NUM_PERM // 2), "little")
_LOW1 = int.from_bytes(b"\x01\x00\x00\x00\x00\x00\x00\x00" * (NUM_PERM // 2), "little")
_WORDS = struct.Struct(f"<{NUM_PERM}I")
# Shingle -> its digest as an integer, per process: 25,000 of about 400 bytes each, 10 MB at most.
_DIGEST_CACHE = 25_000
_DIGESTS: dict[int, int] = {}
_ROWS: dict[int, struct.Struct] = {}
_PERIOD_SHIFT = 47
_PERIOD_MASK = 0xFFFF  # 16 bits of period: the numbering wraps after ~1,250 years
_HASH_MASK = (1 << _PERIOD_SHIFT) - 1
_BAND_MIX = 0x9E3779B97F4A7C15  # odd, so bands 0..2^47 get distinct constants


def _row_struct(n: int) -> struct.Struct:
    got = _ROWS.get(n)
    if got is None:
        got = _ROWS[n] = struct.Struct(f"<{n}I")
    return got


def band_keys(sig: Sequence[int], bands: int = BANDS, *, rows: int | None = None) -> list[int]:
    """LSH band keys, a 47-bit hash of each band's index and rows: articles sharing one are candidates.

    `rows` values per band (default: the whole signature split into `bands`).
    Two articles of Jaccard similarity J share at least one key with
    probability 1 - (1 - J**rows)**bands.
    """
    if rows is None and bands > 0 and len(sig) % bands:
        raise ValueError(f"a signature of {len(sig)} values does not split into {bands} bands")
    r = rows if rows is not None else (len(sig) // bands if bands > 0 else 0)
    if bands <= 0 or r <= 0 or bands * r > len(sig):
        raise ValueError(f"a signature of {len(sig)} values has no {bands} bands of {r} rows")
    # One pack of the rows used; each band's bytes are then a slice of it (the same bytes as packing
    # the band's rows alone).
    packed = struct.pack(f"<{bands * r}I", *sig[: bands * r])
    width = 4 * r
    blake = hashlib.blake2b
    # 48 bits of hash less one (the period goes above them in a positive 63-bit SQLite INTEGER),
    # told apart per band by a constant: a chance collision between unrelated bands of one period
    # is ~1e-9 even at 100k articles a week. storage.schema.m006_band_integers converts the keys
    # of earlier versions ("{period}/{band}:{hex of the same 48 bits}") with this formula.
    return [
        (int.from_bytes(blake(packed[i * width : (i + 1) * width], digest_size=6).digest(), "big") >> 1)
        ^ ((i * _BAND_MIX) & _HASH_MASK)
        for i in range(bands)
    ]


def period(published: datetime) -> int:
    """Index of the `PERIOD`-long slice of time `published` falls in (counted from the Unix epoch)."""
    return int(published.timestamp() // PERIOD.total_seconds())


def timed_band_keys(sig: Sequence[int], published: datetime, *, bands: int = BANDS, rows: int = ROWS) -> list[int]:
    """Band keys scoped to time, as stored: ``period << 47 | band hash``, one per band.

    Lookups use `meeting_keys` (the same band hashes in each period the
    window around the article touches), so two articles within the window
    of each other meet through any band they share: nothing is missed. An article
    never meets keys more than ~2 periods away, so the rows a lookup reads do
    not grow with history: without the scope, a band made of words every
    article here uses ("microsoft", "openai") would match a fixed share of
    the whole table. The period in the high bits keeps one period's keys
    together in the band index, so the rows a new article adds go to the
    same few pages (measured: 4x cheaper than spread keys).
    """
    p = (period(published) & _PERIOD_MASK) << _PERIOD_SHIFT
    return [p | k for k in band_keys(sig, bands, rows=rows)]


def meeting_keys(stored: Iterable[int], around: datetime | None = None, window: timedelta = MAX_WINDOW) -> list[int]:
    """The keys to look up for an article whose stored keys are `stored`.

    Each band in every period that `around` ± `window` touches: an article
    within the window of `around` stored its keys in one of them. A window
    of 3 days touches one or two 7-day periods, so a lookup asks for 24 or
    48 keys. Without `around`, each key's period and the two beside it (all
    that any window up to `PERIOD` can touch); that form is symmetric: A's
    hold one of B's stored keys exactly when B's hold one of A's.
    """
    keys = list(stored)
    if around is not None:
        first, last = period(around - window), period(around + window)
        hashes = list(dict.fromkeys(k & _HASH_MASK for k in keys))
        return [((q & _PERIOD_MASK) << _PERIOD_SHIFT) | h for q in range(first, last + 1) for h in hashes]
    out = []
    for k in keys:
        p, h = k >> _PERIOD_SHIFT, k & _HASH_MASK
        out += [((q & _PERIOD_MASK) << _PERIOD_SHIFT) | h for q in (p - 1, p, p + 1)]
    return out


def similarity(sig_a: Sequence[int], sig_b: Sequence[int]) -> float:
    """Estimated Jaccard similarity: the share of equal positions."""
    if len(sig_a) != len(sig_b) or not sig_a:
        return 0.0
    return sum(1 for x, y in zip(sig_a, sig_b) if x == y) / len(sig_a)


def resemblance(a: Sequence[int], b: Sequence[int]) -> float:
    """Exact Jaccard similarity of two shingle fingerprints (sorted shingle tuples)."""
    sa, sb = set(a), set(b)
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / len(sa | sb)


def fingerprint(title: str, text: str) -> tuple[int, ...]:
    """The article's shingles, sorted: what is stored and compared exactly (about 4 bytes a word of the lead)."""
    return tuple(sorted(shingles(title, text)))


def pack(sig: Sequence[int]) -> bytes:
    """Signature as bytes for a BLOB column (little-endian uint32s)."""
    return struct.pack(f"<{len(sig)}I", *sig)


def unpack(blob: bytes) -> tuple[int, ...]:
    if len(blob) % 4:
        raise ValueError(f"a signature blob has a multiple of 4 bytes, not {len(blob)}")
    return struct.unpack(f"<{len(blob) // 4}I", blob)


# --- deciding ------------------------------------------------------------------------------------


def story_key(title: str, text: str, published: datetime, *, num_perm: int = NUM_PERM) -> StoryKey:
    """What the store takes: the packed fingerprint (exact shingles) and the time-scoped band keys.

    The band keys come from the MinHash signature, so similar articles meet
    in the index; the choice among them compares fingerprints exactly, so
    no estimation noise decides a pair near the threshold.
    """
    fp = fingerprint(title, text)
    return StoryKey(pack(fp), tuple(timed_band_keys(signature(fp, num_perm), published)))


@dataclass(frozen=True)
class ArticleSig:
    """The article being placed."""

    title: str
    signature: tuple[int, ...]  # the fingerprint: sorted shingles (see `fingerprint`)
    published: datetime


@dataclass(frozen=True)
class StorySig:
    """A stored article the band index returned as a candidate."""

    article_id: int
    story_id: int
    signature: tuple[int, ...]  # the fingerprint: sorted shingles
    title: str
    published: datetime


class _Comparable(Protocol):
    @property
    def title(self) -> str: ...

    @property
    def signature(self) -> tuple[int, ...]: ...


def title_overlap(a: str, b: str) -> float:
    """Share of content words two titles have in common (Jaccard over content words)."""
    wa, wb = content_words(a), content_words(b)
    if not wa or not wb:
        return 0.0
    return len(wa & wb) / len(wa | wb)


def same_story(
    a: _Comparable,
    b: _Comparable,
    *,
    sim_alone: float = SIM_ALONE,
    sim_with_title: float = SIM_WITH_TITLE,
    title_min: float = TITLE_OVERLAP,
) -> bool:
    """Whether two articles tell the same event (time is checked by the caller: `choose_story`)."""
    sim = resemblance(a.signature, b.signature)
    if sim >= sim_alone:
        return True
    return sim >= sim_with_title and title_overlap(a.title, b.title) >= title_min


def choose_story(
    new: ArticleSig,
    candidates: Sequence[StorySig],
    *,
    window: timedelta = DEFAULT_WINDOW,
    published: datetime | None = None,
) -> int | None:
    """The story the new article joins, or None for a new story.

    Candidates published more than `window` away from the new article are
    ignored (a follow-up a week later is a new story). Among those that pass
    `same_story`, the most similar wins; ties go to the older story.
    """
    when = published if published is not None else new.published
    best: tuple[float, int] | None = None
    best_story: int | None = None
    for c in candidates:
        if abs(c.published - when) > window:
            continue
        if not same_story(new, c):
            continue
        rank = (resemblance(new.signature, c.signature), -c.story_id)
        if best is None or rank > best:
            best, best_story = rank, c.story_id
    return best_story


def choose_story_from_rows(
    title: str,
    signature_blob: bytes,
    published: datetime,
    rows: Iterable[Mapping[str, Any]],
    *,
    window: timedelta = DEFAULT_WINDOW,
) -> int | None:
    """`choose_story` over the rows `Store.story_candidates` returns.

    Rows carry ``id, story_id, signature (bytes), title, published (ISO text)``;
    rows without a story or a signature are skipped.
    """
    cands = [
        StorySig(
            article_id=int(r["id"]),
            story_id=int(r["story_id"]),
            signature=unpack(r["signature"]),
            title=str(r["title"]),
            published=datetime.fromisoformat(r["published"]) if isinstance(r["published"], str) else r["published"],
        )
        for r in rows
        if r.get("story_id") is not None and r.get("signature")
    ]
    return choose_story(ArticleSig(title, unpack(signature_blob), published), cands, window=window)


# --- feed template words ------------------------------------------------------------------------

# A shingle is a feed's template when it recurs in at least this share of one fetch's items (and in at
# least TEMPLATE_MIN of them; measured on the corpus, 0.2 left the 5 template-bodied items of a 5-item
# JSON feed together, 0.05 strips a five-item developing story from a 100-item feed): "Outperform" in every finanzen.net analyst rating, "Brandmeldeanlagenalarm"
# in a fire brigade's call-outs. Two items that share only such words are not one event. A story told
# several times in one small feed reaches the count too, but it keeps its other words and still meets
# the other outlets' articles.
TEMPLATE_SHARE = 0.1
TEMPLATE_MIN = 4


def template_shingles(fingerprints: Sequence[Sequence[int]], *, share: float = TEMPLATE_SHARE,
                      minimum: int = TEMPLATE_MIN) -> frozenset[int]:
    """The shingles that recur across one fetch's items: the feed's template, not news."""
    counts: dict[int, int] = {}
    for fp in fingerprints:
        for x in set(fp):
            counts[x] = counts.get(x, 0) + 1
    need = max(minimum, math.ceil(share * len(fingerprints)))
    return frozenset(x for x, c in counts.items() if c >= need)


def distinctive_key(key: StoryKey, template: frozenset[int], published: datetime) -> StoryKey:
    """The story key without the feed's template shingles (the same key when it has none)."""
    fp = unpack(key.signature)
    kept = tuple(x for x in fp if x not in template)
    if len(kept) == len(fp):
        return key
    return StoryKey(pack(kept), tuple(timed_band_keys(signature(kept), published)))


def fetch_story_keys(items: Sequence[tuple[str, str, datetime]]) -> list[StoryKey]:
    """Every item of one fetch's story key, the fetch's template already dropped: (title, text, published) each.

    The same keys as `story_key` per item followed by the writer's
    `ingest.discount_template` (which then finds no template and returns at
    once), with one MinHash per item instead of two for the items that
    carry the template: meant for the parse workers, which see the whole
    fetch, so that the single writer thread does not recompute signatures
    (measured on the corpus poll: a third of the writer's time).
    """
    fps = [fingerprint(title, text) for title, text, _ in items]
    template = template_shingles(fps)
    keys = []
    for fp, (_, _, published) in zip(fps, items):
        kept = tuple(x for x in fp if x not in template) if template else fp
        keys.append(StoryKey(pack(kept), tuple(timed_band_keys(signature(kept), published))))
    return keys


def distinctive_title_words(titles: Sequence[str], *, share: float = TEMPLATE_SHARE,
                            minimum: int = TEMPLATE_MIN) -> list[set[str]]:
    """Each title's content words without those recurring across the feed's titles (the corpus check)."""
    sets = [content_words(t) for t in titles]
    counts: dict[str, int] = {}
    for ws in sets:
        for w in ws:
            counts[w] = counts.get(w, 0) + 1
    need = max(minimum, math.ceil(share * len(sets)))
    return [{w for w in ws if counts[w] < need} for ws in sets]


def story_faults(
    members: Sequence[tuple[datetime, str, set[str]]], *, window: timedelta = DEFAULT_WINDOW
) -> list[str]:
    """What is wrong with one story's grouping of (published, title, distinctive title words) members.

    A span past `window`; a member whose title is no other member's and whose
    distinctive title words (see `distinctive_title_words`) meet no other
    member's: two analyst ratings "Gartner Outperform" / "PayPal Outperform"
    share only the feed's template. Empty when the story is sound.
    """
    faults = []
    if len(members) > 1:
        span = max(m[0] for m in members) - min(m[0] for m in members)
        if span > window:
            faults.append(f"spans {span}")
        for i, (_, title, ws) in enumerate(members):
            others = [m for j, m in enumerate(members) if j != i]
            if not any(ws & o[2] or title == o[1] for o in others):
                faults.append(f"{title[:60]!r} shares no distinctive title word with the others")
                break
    return faults


# --- settling membership: bounded spans, bridged stories merged ---------------------------------


class StoryBook:
    """Stories being placed: their time spans, and the stories a bridging article merged.

    A story spans at most `window` from its first article to its last, so a
    chain of call-outs, each like the last, cannot drift on for days. An
    article that is the same story as members of several stories merges them
    (when the merged span still fits), so the grouping does not depend on
    which feed's fetch finished first: arrival order decides only which id
    survives. Story refs are ints; positive ones are stored stories, which
    survive a merge before pending (negative) ones, and the lower id first.
    """

    def __init__(self, window: timedelta, spans: Mapping[int, tuple[datetime, datetime]] | None = None) -> None:
        self.window = window
        self.span: dict[int, tuple[datetime, datetime]] = dict(spans or {})
        self.parent: dict[int, int] = {}
        self.merged: dict[int, set[int]] = {}  # surviving stored story -> stored stories it absorbed

    def find(self, ref: int) -> int:
        root = ref
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while ref != root:
            ref, self.parent[ref] = self.parent.get(ref, ref), root
        return root

    def _fits(self, span: tuple[datetime, datetime], when: datetime) -> tuple[datetime, datetime] | None:
        first, last = min(span[0], when), max(span[1], when)
        return (first, last) if last - first <= self.window else None

    def place(self, new: ArticleSig, candidates: Sequence[StorySig], *, new_ref: int) -> int:
        """The story ref the new article joins (`new_ref`, registered, when none fits), merges done."""
        best: dict[int, float] = {}
        for c in candidates:
            if not same_story(new, c):
                continue
            root = self.find(c.story_id)
            best[root] = max(best.get(root, 0.0), resemblance(new.signature, c.signature))
        order = sorted(best, key=lambda r: (-best[r], r < 0, abs(r)))
        target: int | None = None
        span = (new.published, new.published)
        for root in order:
            theirs = self.span.get(root, span)
            joined = self._fits((min(span[0], theirs[0]), max(span[1], theirs[1])), new.published)
            if joined is None:
                continue
            span = joined
            target = root if target is None else self._union(target, root)
        if target is None:
            target = new_ref
        self.span[target] = span
        return target

    def _union(self, a: int, b: int) -> int:
        keep, gone = sorted((a, b), key=lambda r: (r < 0, abs(r)))
        self.parent[gone] = keep
        if gone > 0 and keep > 0:
            self.merged.setdefault(keep, set()).add(gone)
            self.merged[keep] |= self.merged.pop(gone, set())
        return keep


# --- presenting ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One article of a story, as the digest shows it."""

    article_id: int
    title: str
    url: str
    feed: str
    published: datetime
    score: float


def lead(members: Sequence[Member]) -> Member:
    """The article that fronts the story: highest score, then earliest, then lowest id."""
    if not members:
        raise ValueError("a story has at least one member")
    return min(members, key=lambda m: (-m.score, m.published, m.article_id))


def best_title(members: Sequence[Member]) -> str:
    return lead(members).title


def outlets(members: Sequence[Member]) -> list[str]:
    """Distinct feeds, in order of first coverage."""
    seen: dict[str, None] = {}
    for m in sorted(members, key=lambda m: (m.published, m.article_id)):
        seen.setdefault(m.feed, None)
    return list(seen)


def also_covered(members: Sequence[Member], *, limit: int = 3) -> tuple[list[Member], int]:
    """The other outlets' first article each (earliest first, at most `limit`) and how many more.

    Renders as "also covered by: Outlet A, Outlet B (+n)". The lead's own
    outlet is not repeated.
    """
    first = lead(members)
    per_feed: dict[str, Member] = {}
    for m in sorted(members, key=lambda m: (m.published, m.article_id)):
        if m.feed != first.feed:
            per_feed.setdefault(m.feed, m)
    others = list(per_feed.values())
    return others[:limit], max(0, len(others) - limit)


COVERAGE_WEIGHT = 0.5


def story_rank(members: Sequence[Member], *, weight: float = COVERAGE_WEIGHT) -> float:
    """Best member score + weight * log2(distinct outlets).

    One outlet adds nothing; each doubling of coverage adds `weight` (0.5: two
    outlets +0.5, four +1.0, eight +1.5), so wide coverage lifts a story
    without letting thirty copies of a weak item outrank one strong one.
    """
    return lead(members).score + coverage_bonus(len(outlets(members)), weight=weight)


def coverage_bonus(outlets: int, *, weight: float = COVERAGE_WEIGHT) -> float:
    """What `outlets` distinct outlets add to a story's score: weight * log2(outlets); 0 for one."""
    return weight * math.log2(max(1, outlets))


def developing(first_seen_day: date, day: date, *, members_on_day: int = 1) -> bool:
    """A story first reported before `day` that gained members on `day`: shown as developing, not new."""
    return first_seen_day < day and members_on_day > 0


# --- grouping a batch in memory (backfills, tests, the benchmark) ----------------------------------


@dataclass(frozen=True)
class Draft:
    """An article to place by `group_in_memory`."""

    title: str
    text: str
    published: datetime


def group_in_memory(
    items: Sequence[Draft], *, window: timedelta = DEFAULT_WINDOW, feeds: Sequence[str] | None = None
) -> list[int]:
    """Story id (0-based, in order of first placement) of each item, placed in published order.

    The same steps the store takes (each feed's template shingles dropped,
    time-scoped band keys -> candidates -> `StoryBook.place`), with a dict
    for the band index. `feeds` names each item's feed (one fetch each);
    without it no template is discounted.
    """
    keys = [story_key(it.title, it.text, it.published) for it in items]
    if feeds is not None:
        by_feed: dict[str, list[int]] = {}
        for i, f in enumerate(feeds):
            by_feed.setdefault(f, []).append(i)
        for idx in by_feed.values():
            template = template_shingles([unpack(keys[i].signature) for i in idx])
            for i in idx:
                keys[i] = distinctive_key(keys[i], template, items[i].published)
    index: dict[int, list[int]] = {}
    placed: list[StorySig | None] = [None] * len(items)
    refs: list[int] = [0] * len(items)
    book = StoryBook(window)
    for i in sorted(range(len(items)), key=lambda j: (items[j].published, j)):
        it = items[i]
        fp = unpack(keys[i].signature)
        seen: dict[int, None] = {}
        for k in meeting_keys(keys[i].band_keys, it.published, window):
            for j in index.get(k, ()):
                seen.setdefault(j, None)
        cands = [c for j in seen if (c := placed[j]) is not None]
        refs[i] = book.place(ArticleSig(it.title, fp, it.published), cands, new_ref=i + 1)
        placed[i] = StorySig(i, refs[i], fp, it.title, it.published)
        for k in keys[i].band_keys:
            index.setdefault(k, []).append(i)
    names: dict[int, int] = {}
    for i in sorted(range(len(items)), key=lambda j: (items[j].published, j)):
        names.setdefault(book.find(refs[i]), len(names))
    return [names[book.find(r)] for r in refs]


def pair_accuracy(expected: Sequence[str], got: Sequence[int]) -> tuple[float, float]:
    """Pairwise precision and recall of a grouping against expected labels.

    A pair counts as grouped when both items share a story. Precision: of the
    pairs we grouped, the share that should be; recall: of the pairs that
    should be grouped, the share we grouped. 1.0 when there is nothing to count.
    """
    tp = fp = fn = 0
    n = len(expected)
    for i in range(n):
        for j in range(i + 1, n):
            same_e, same_g = expected[i] == expected[j], got[i] == got[j]
            tp += same_e and same_g
            fp += same_g and not same_e
            fn += same_e and not same_g
    return (tp / (tp + fp) if tp + fp else 1.0, tp / (tp + fn) if tp + fn else 1.0)
