"""The fast MinHash (`stories.signature`) gives exactly the values of its plain statement.

Story keys are stored: a faster signature that differed in one bit would
split every story across the upgrade. Checked on many generated shingle sets
(edge values included) and, when the shared corpus is there, on every
corpus entry's fingerprint and story key.
"""

from __future__ import annotations

import hashlib
import random
import struct
import zlib
from datetime import datetime, timezone
from pathlib import Path

import pytest
from feedgen import CORPUS_BASE, parsed_corpus

from core.types import StoryKey
from monitor import stories
from monitor.clean import to_article

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "feeds"
WHEN = datetime(2026, 11, 20, tzinfo=timezone.utc)


def reference_shingles(title: str, text: str, k: int = 1) -> set[int]:
    """`stories.shingles` as it was before the speed work (issue 12)."""
    t = [stories._stem(w) for w in stories.words(title) if w not in stories._STOP]
    body = [stories._stem(w) for w in stories.words(text)[: stories.LEAD_WORDS] if w not in stories._STOP]
    out: set[int] = set()
    for prefix, toks in (("", t + body), ("t:", t)):
        if not toks:
            continue
        if len(toks) < k:
            out.add(zlib.crc32((prefix + " ".join(toks)).encode("utf-8")))
            continue
        for i in range(len(toks) - k + 1):
            out.add(zlib.crc32((prefix + " ".join(toks[i : i + k])).encode("utf-8")))
    return out


def reference_band_keys(sig: tuple[int, ...], bands: int, rows: int) -> list[int]:
    """Each band packed alone and hashed, then made m006's integer (as schema._integer_band_key)."""
    keys = []
    for i in range(bands):
        chunk = struct.pack(f"<{rows}I", *sig[i * rows : (i + 1) * rows])
        h48 = int(hashlib.blake2b(chunk, digest_size=6).hexdigest(), 16)
        keys.append((h48 >> 1) ^ ((i * 0x9E3779B97F4A7C15) & ((1 << 47) - 1)))
    return keys


def reference_key(title: str, text: str, published: datetime) -> StoryKey:
    """The story key as the code before the speed work made it: every step in its plain form."""
    fp = tuple(sorted(reference_shingles(title, text)))
    sig = stories._signature_reference(fp)
    p = stories.period(published)
    plain = reference_band_keys(sig, stories.BANDS, stories.ROWS)
    return StoryKey(stories.pack(fp), tuple(((p & 0xFFFF) << 47) | k for k in plain))


def test_shingles_and_band_keys_match_the_plain_forms() -> None:
    rng = random.Random(9)
    vocab = [f"w{n}" for n in range(300)] + ["Straße", "naïve", "the", "Microsoft's"]
    for _ in range(300):
        title = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 8)))
        text = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 80)))
        for k in (1, 2, 3):
            assert stories.shingles(title, text, k) == reference_shingles(title, text, k)
        sig = tuple(rng.getrandbits(32) for _ in range(64))
        assert stories.band_keys(sig, 32) == reference_band_keys(sig, 32, 2)
        assert stories.band_keys(sig, 24, rows=2) == reference_band_keys(sig, 24, 2)
        assert stories.band_keys(sig, 16) == reference_band_keys(sig, 16, 4)


def test_signature_matches_the_plain_form_on_generated_sets() -> None:
    rng = random.Random(12)
    sets: list[list[int]] = [[0], [0xFFFFFFFF], [0, 0xFFFFFFFF], [7, 7, 7], list(range(300))]
    sets += [[rng.getrandbits(32) for _ in range(rng.randint(1, 200))] for _ in range(3000)]
    for xs in sets:
        assert stories.signature(xs) == stories._signature_reference(xs), xs[:5]
    # A second pass reads the cached digests: still the same values.
    for xs in sets[:500]:
        assert stories.signature(set(xs)) == stories._signature_reference(xs)


def test_signature_equal_words_in_every_lane() -> None:
    # Shingles whose digests tie or differ only in one word's top bit stress the lane borrow.
    xs = list(range(2000))
    rows = [hashlib.shake_128(x.to_bytes(4, "little")).digest(256) for x in xs]
    assert len(set(rows)) == len(rows)
    assert stories.signature(xs + xs[:10]) == stories._signature_reference(xs)


def test_signature_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stories, "_DIGEST_CACHE", 50)
    stories._DIGESTS.clear()
    xs = list(range(1000, 1400))
    assert stories.signature(xs) == stories._signature_reference(xs)
    assert len(stories._DIGESTS) <= 50
    stories._DIGESTS.clear()


def test_other_lengths_use_the_plain_form() -> None:
    xs = [1, 2, 3, 99]
    assert stories.signature(xs, 16) == stories._signature_reference(xs, 16)
    assert len(stories.signature(xs, 16)) == 16


def test_story_keys_of_generated_texts_are_unchanged() -> None:
    rng = random.Random(5)
    vocab = [f"w{n}" for n in range(800)] + ["Microsoft", "OpenAI's", "the", "Azure", "said"]
    for i in range(400):
        title = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 12)))
        text = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 150)))
        assert stories.story_key(title, text, WHEN) == reference_key(title, text, WHEN), i


@pytest.mark.skipif(not (CORPUS / "MANIFEST.tsv").is_file(), reason="feed corpus not found beside the project")
def test_story_keys_of_every_corpus_entry_are_unchanged() -> None:
    checked = 0
    for name, feed in parsed_corpus():
        for e in feed.entries:
            a = to_article(e, base_url=CORPUS_BASE, fetched_at=datetime(2030, 1, 1, tzinfo=timezone.utc))
            assert stories.story_key(a.title, a.text, a.published) == reference_key(a.title, a.text, a.published), name
            checked += 1
    assert checked > 3000
