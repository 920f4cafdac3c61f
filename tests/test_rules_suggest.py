"""`rules suggest`: the built-in background and whole-rule proposals measured on labels."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from rules_helpers import write

from monitor.cli import main
from rules import load_rules, propose_rules, read_labels, suggest_terms
from rules.background import RARE_SHARE, share

RULES = """[aliases]
zeph = ["Zephyrcorp", "Zephyr Corp"]

[[rules]]
name = "listing"
tags = ["ipo"]
query = '@zeph NEAR/5 listing'
weight = 2.0
"""
DOC = "Zephyrcorp weighs a listing. Zephyrcorp bankers met. Zephyrcorp recapitalization plan. Quantumleaf merger."


def labels(tmp_path: Path) -> Path:
    rows = [
        {"text": "Zephyrcorp plans a listing", "relevant": True},
        {"text": "Zephyrcorp bankers discuss the recapitalization", "relevant": True},
        {"text": "Zephyrcorp bankers host a golf day", "relevant": False},
        {"text": "Quantumleaf merger approved", "relevant": False},
    ]
    return write(tmp_path, "l.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")


def test_background_shares_rank_common_news_words_below_rare_ones() -> None:
    assert share(("said",)) > share(("innovation",)) > share(("ipo",)) > share(("zephyrcorp",)) == RARE_SHARE
    assert share(("data", "centers")) < share(("data",))
    ranked = [s.term.lower() for s in suggest_terms("Tech innovation. Tech innovation. Zephyrcorp Zephyrcorp.", top=3)]
    assert ranked[0] == "zephyrcorp"


def test_proposals_are_measured_on_the_labels(tmp_path: Path) -> None:
    rs = load_rules([write(tmp_path, "r.toml", RULES)])
    suggestions = suggest_terms(DOC, top=10)
    got = {p.term: p for p in propose_rules(rs, suggestions, read_labels(labels(tmp_path)), anchor="@zeph")}
    assert (got["recapitalization"].gained, got["recapitalization"].false) == (1, 0)
    assert (got["bankers"].gained, got["bankers"].false) == (1, 1)
    assert "Zephyrcorp" not in got  # the anchor itself is not proposed
    assert "listing" not in got  # already flagged by the rules: no change
    order = list(got)
    assert order.index("recapitalization") < order.index("bankers")


def test_suggest_command_prints_proposals(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    rules = write(tmp_path, "r.toml", RULES)
    doc = write(tmp_path, "doc.txt", DOC)
    result = CliRunner().invoke(main, ["rules", "suggest", str(doc), "--background", "builtin", "--rules", str(rules),
                                       "--labels", str(labels(tmp_path)), "--anchor", "@zeph"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "score = count in the document x ln(1 / share of background articles using the term)"
    at = lines.index("relevant newly flagged (+) / irrelevant newly flagged (-), best first")
    assert lines[at + 1].split() == ["+1", "-0", "(@zeph)", "NEAR/15", "recapitalization"]
    bad = CliRunner().invoke(main, ["rules", "suggest", str(doc), "--rules", str(rules), "--background", "builtin",
                                    "--labels", str(labels(tmp_path)), "--anchor", "@nope"])
    assert bad.exit_code == 2 and "unknown alias @nope" in bad.output
