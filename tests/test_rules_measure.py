"""Labeled evaluation, the default rules' quality bar, backtest comparison and term suggestion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import MonitorError
from core.types import Match, Tagging
from rules import compare, default_rule_files, evaluate_labels, load_rules, read_labels, suggest_terms
from rules_helpers import one_rule, write

LABELED = Path(__file__).parent / "data" / "labeled.jsonl"
SEED = Path(__file__).parent.parent.parent / "shared" / "seeds" / "microsoft-openai-partners-to-rivals.txt"

HARD_NEGATIVE_KINDS = ["IPO", "Copilot", "Azure", "PBC", "cholangitis", "Stargate", "sue", "data center"]


def test_labeled_set_is_big_and_mostly_hard_negatives() -> None:
    examples = read_labels(LABELED)
    negatives = [e for e in examples if not e.relevant]
    assert len(examples) >= 80 and len(negatives) >= len(examples) / 2
    # the negatives are hard ones: each kind the issue lists is present
    for word in HARD_NEGATIVE_KINDS:
        assert any(word.lower() in (e.title + " " + e.text).lower() for e in negatives), word
    assert len({e.id for e in examples}) == len(examples)


def test_default_rules_meet_the_quality_bar() -> None:
    report = evaluate_labels(load_rules(default_rule_files()), read_labels(LABELED))
    assert report.overall.precision >= 0.9, report.format_text()
    assert report.overall.recall >= 0.9, report.format_text()


def test_eval_counts_per_tag_and_explains_misses(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "title": "OpenAI IPO", "text": None, "relevant": True, "topics": ["ipo"]},
        {"id": "b", "title": "Reddit IPO", "relevant": False, "topics": []},
        {"title": "OpenAI plans", "text": "a listing", "relevant": True, "topics": ["ipo"]},
        {"id": "d", "text": "nothing", "relevant": False},
    ]
    path = write(tmp_path, "l.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    rs = one_rule("=IPO")
    report = evaluate_labels(rs, read_labels(path))
    data = report.to_dict()
    assert {k: data[k] for k in ("tp", "fp", "fn", "tn")} == {"tp": 1, "fp": 1, "fn": 1, "tn": 1}
    assert (data["precision"], data["recall"], data["f1"]) == (0.5, 0.5, 0.5)
    # the rule tags "t", never "ipo": both relevant IPO examples are per-tag misses
    # (precision with nothing predicted counts as 1.0: no false alarms)
    assert data["per_tag"] == {"ipo": {"precision": 1.0, "recall": 0.0, "f1": 0.0, "tp": 0, "fp": 0, "fn": 2, "tn": 1}}
    assert data["false_positives"] == [
        {"id": "b", "line": 2, "title": "Reddit IPO", "score": 1.5, "tags": ["t"], "rules": {"r": ["=IPO"]}}
    ]
    assert data["false_negatives"][0]["id"] is None and data["false_negatives"][0]["line"] == 3
    text = report.format_text()
    assert "precision 0.500  recall 0.500" in text and "[b] 'Reddit IPO' score 1.5" in text and "r: =IPO" in text
    assert "[line 3] 'OpenAI plans' score 0\n      no rule matched" in text


def test_per_tag_uses_only_examples_with_topics(tmp_path: Path) -> None:
    rows = [
        {"title": "an IPO", "relevant": True, "topics": ["ipo"]},
        {"title": "an IPO", "relevant": True},  # no topics: counts overall only
        {"title": "an IPO", "relevant": True, "topics": ["azure"]},
    ]
    path = write(tmp_path, "l.jsonl", "\n".join(json.dumps(r) for r in rows))
    rs = load_rules([write(tmp_path, "r.toml", "threshold=1\n[[rules]]\nname='x'\ntags=['ipo']\nquery='=IPO'\n")])
    per_tag = evaluate_labels(rs, read_labels(path)).to_dict()["per_tag"]
    assert (per_tag["ipo"]["tp"], per_tag["ipo"]["fp"]) == (1, 1)
    assert (per_tag["azure"]["fn"], per_tag["azure"]["tn"]) == (1, 1)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json}\n", ":1: not JSON"),
        ('[1, 2]\n', ":1: expected a JSON object"),
        ('{"title": "x"}\n', ":1: 'relevant' must be true or false"),
        ('{"relevant": "yes"}\n', ":1: 'relevant' must be true or false"),
        ('{"relevant": true, "topics": "ipo"}\n', ":1: 'topics' must be a list of strings"),
        ('{"relevant": true, "title": ["x"]}\n', ":1: title, text, url and id must be strings"),
        ("\n\n", "no labeled examples"),
    ],
)
def test_bad_labels_files(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(MonitorError, match=message):
        read_labels(write(tmp_path, "l.jsonl", content))


def test_missing_labels_file(tmp_path: Path) -> None:
    with pytest.raises(MonitorError, match="cannot read labels"):
        read_labels(tmp_path / "none.jsonl")


# ---------------------------------------------------------------- backtest


def tagging(flagged: bool, *tags: str, score: float | None = None) -> Tagging:
    return Tagging(score=score if score is not None else (3.0 if flagged else 1.0), flagged=flagged, tags=list(tags),
                   matches=[Match("r", "x", "text", 0, 1)] if tags else [])


def test_compare_reports_flag_and_tag_changes() -> None:
    before = {1: tagging(True, "ipo"), 2: tagging(False, "azure"), 3: tagging(True, "pbc", "partnership"), 4: tagging(False)}
    after = {1: tagging(True, "ipo"), 2: tagging(True, "azure", "api"), 3: tagging(False, "pbc"), 4: tagging(False), 5: tagging(True, "ipo")}
    report = compare(before, after)
    assert report.articles == 5
    assert report.newly_flagged == [2, 5]
    assert report.no_longer_flagged == [3]
    assert report.tags_added == {2: ["api"], 5: ["ipo"]}
    assert report.tags_removed == {3: ["partnership"]}
    assert report.tag_counts_before == {"azure": 1, "ipo": 1, "partnership": 1, "pbc": 1}
    assert report.tag_counts_after == {"api": 1, "azure": 1, "ipo": 2, "pbc": 1}
    assert report.flagged_tag_counts_before == {"ipo": 1, "partnership": 1, "pbc": 1}
    assert report.flagged_tag_counts_after == {"api": 1, "azure": 1, "ipo": 2}
    assert (report.flagged_before, report.flagged_after) == (2, 3)
    assert report.score_changed == [2, 3, 5]
    assert report.changed
    assert report.to_dict()["per_tag"]["ipo"] == {"before": 1, "after": 2, "flagged_before": 1, "flagged_after": 2}


def test_compare_of_identical_taggings_changes_nothing() -> None:
    same = {1: tagging(True, "ipo"), 2: tagging(False)}
    report = compare(same, dict(same))
    assert not report.changed and report.newly_flagged == [] and report.score_changed == []


# ---------------------------------------------------------------- suggest


def test_suggest_ranks_distinctive_terms_above_common_news_words() -> None:
    doc = (
        "Ferrocene compilers are certified. The Ferrocene toolchain ships with a qualified ISO checker. "
        "Teams adopting the Ferrocene toolchain say the ISO checker saved months. ISO audits follow. The company said it would grow."
    )
    got = suggest_terms(doc, top=6)
    queries = [s.query for s in got]
    assert queries[0] == "Ferrocene"
    assert '"Ferrocene toolchain"' in queries and "=ISO" in queries
    assert not {"company", "said", "the"} & {s.term.lower() for s in got}
    assert got[0].count == 3


def test_suggest_uses_the_background_given() -> None:
    doc = "Quokka numbers rose. Quokka counts rose again. Wombat numbers fell."
    plain = [s.term for s in suggest_terms(doc, top=10)]
    against = [s.term for s in suggest_terms(doc, ["A quokka and a wallaby."] * 5, top=10)]
    # a word common in the background drops below one that is not
    assert plain.index("Quokka") < plain.index("Wombat")
    assert against.index("Quokka") > against.index("Wombat")


@pytest.mark.skipif(not SEED.exists(), reason="shared seed not present")
def test_suggest_on_the_seed_finds_its_subjects() -> None:
    top = [s.query for s in suggest_terms(SEED.read_text(encoding="utf-8"), top=25)]
    assert {"OpenAI", "Microsoft", "=IPO"} <= set(top[:10])
    # Words of any tech or business story are not what makes the seed distinctive.
    assert not {"tech", "innovation", "companies", "future", "industry", "access"} & {q.lower() for q in top[:15]}
