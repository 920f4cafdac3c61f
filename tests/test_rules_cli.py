"""`monitor rules ...` through the real root command (and once through a real process)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.cli_rules import set_rule_files
from monitor.config import load_config
from core.errors import MonitorError
from rules import default_rule_files

DATA = Path(__file__).parent / "data"


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory with no config in sight."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    return tmp_path


def invoke(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["rules", *args], input=input, catch_exceptions=False)
    return result.exit_code, result.output


def test_check_through_a_real_process(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    ok = subprocess.run([sys.executable, "-m", "monitor", "rules", "check"], env=subprocess_env, cwd=tmp_path,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "OK: 29 rules" in ok.stdout and "openai-ipo" in ok.stdout and "@openai = OpenAI" in ok.stdout
    broken = DATA / "rules" / "broken.toml"
    bad = subprocess.run([sys.executable, "-m", "monitor", "rules", "check", "--rules", str(broken)], env=subprocess_env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 11 and "Traceback" not in bad.stderr
    assert f"monitor: {broken}:18:10: rule typo-alias: unknown alias @opnai" in lines


def test_test_command_scores_and_marks_matches(cwd: Path) -> None:
    code, out = invoke("test", "--title", "OpenAI weighs an IPO", "--text", "Microsoft is renegotiating its stake.")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("score ") and lines[0].endswith("(threshold 2): FLAGGED")
    assert "tags: " in lines[1] and "ipo" in lines[1]
    assert "title: «OpenAI» weighs an «IPO»" in lines
    assert "text: «Microsoft» is «renegotiating» its «stake»." in lines


def test_test_command_reads_stdin_and_files(cwd: Path) -> None:
    code, out = invoke("test", input="How to use GitHub Copilot in your editor\n")
    assert code == 0 and out.splitlines()[0] == "score 0 (threshold 2): not flagged"
    doc = cwd / "a.txt"
    doc.write_text("The Stargate project adds a site with Oracle.", encoding="utf-8")
    code, out = invoke("test", "--file", str(doc))
    assert "FLAGGED" in out and "«Stargate» project adds a site with «Oracle»" in out
    result = CliRunner().invoke(main, ["rules", "test", "--text", "x", "--file", str(doc)])
    assert result.exit_code == 2 and "not both" in result.output


def test_test_command_with_candidate_rules(cwd: Path) -> None:
    code, out = invoke("test", "--rules", str(DATA / "rules" / "extra.toml"), "--url", "https://x.test/openai-ipo",
                       "--text", "nothing")
    assert code == 0 and "url: https://x.test/«openai»-«ipo»" in out and "score 1 (threshold 3)" in out


def test_eval_json_and_text(cwd: Path) -> None:
    code, out = invoke("eval", str(DATA / "labeled.jsonl"), "--json")
    data = json.loads(out)
    assert set(data) == {"precision", "recall", "f1", "tp", "fp", "fn", "tn", "per_tag", "per_tag_misses", "false_positives",
                         "false_negatives"}
    assert data["tp"] + data["fn"] == 49 and data["fp"] + data["tn"] == 54
    assert "ipo" in data["per_tag"]
    code, out = invoke("eval", str(DATA / "labeled.jsonl"), "--rules", str(DATA / "rules" / "extra.toml"))
    # a rule set that only looks at URLs finds nothing in URL-less examples
    assert "precision 1.000  recall 0.000" in out and "false negatives: 49" in out and "no rule matched" in out


def test_suggest_lists_terms(cwd: Path) -> None:
    doc = cwd / "seed.txt"
    doc.write_text("Zephyrcorp plans an IPO. Zephyrcorp said the IPO could value it highly. Zephyrcorp grows.", "utf-8")
    code, out = invoke("suggest", str(doc), "--top", "3")
    lines = out.splitlines()
    assert lines[0] == "score = count in the document x ln(1 / share of background articles using the term)"
    assert lines[1].split() == ["score", "count", "query"]
    assert lines[2].split()[1:] == ["3", "Zephyrcorp"] and any(line.endswith(" =IPO") for line in lines)


def test_init_writes_rules_and_points_a_new_config_at_them(cwd: Path) -> None:
    code, out = invoke("init")
    assert code == 0
    assert (cwd / "rules.toml").read_text("utf-8") == default_rule_files()[0].read_text("utf-8")
    assert tomllib.loads((cwd / "monitor.toml").read_text("utf-8")) == {"rules": {"files": ["rules.toml"]}}
    assert [p.resolve() for p in load_config(cwd / "monitor.toml").rule_files] == [(cwd / "rules.toml").resolve()]
    with pytest.raises(MonitorError, match="already exists; use --force"):
        invoke("init")
    code, _ = invoke("init", "--force")
    assert code == 0


def test_init_keeps_an_existing_config_and_replaces_only_the_rules_entry(cwd: Path) -> None:
    config = cwd / "conf" / "monitor.toml"
    config.parent.mkdir()
    config.write_text('# my settings\n[rules]\nfiles = [\n  "old.toml",\n]  # old\n\n[fetch]\ntimeout = 5\n', "utf-8")
    result = CliRunner().invoke(main, ["--config", str(config), "rules", "init", str(cwd / "mine" / "r.toml")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    text = config.read_text("utf-8")
    assert text.startswith("# my settings\n[rules]\n") and "timeout = 5" in text and "old.toml" not in text
    assert tomllib.loads(text)["rules"]["files"] == ["../mine/r.toml"]
    assert (cwd / "mine" / "r.toml").exists()


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("", '[rules]\nfiles = ["r.toml"]\n'),
        ("[fetch]\ntimeout = 5\n", '[fetch]\ntimeout = 5\n\n[rules]\nfiles = ["r.toml"]\n'),
        ("[rules]\n# keep me\n", '[rules]\nfiles = ["r.toml"]\n# keep me\n'),
        ('[rules]\nfiles = ["a.toml"]\n[x]\nfiles = 1\n', '[rules]\nfiles = ["r.toml"]\n[x]\nfiles = 1\n'),
        ('rules.files = ["a.toml"]\n', 'rules.files = ["r.toml"]\n'),
        ('[[feeds]]\nurl = "u"\nfiles = 2\n', '[[feeds]]\nurl = "u"\nfiles = 2\n\n[rules]\nfiles = ["r.toml"]\n'),
    ],
)
def test_set_rule_files(before: str, after: str) -> None:
    assert set_rule_files(before, ["r.toml"]) == after


def test_set_rule_files_refuses_what_it_cannot_edit_safely() -> None:
    with pytest.raises(MonitorError, match=r"could not set \[rules\] files"):
        set_rule_files('rules = { files = ["a.toml"] }\n', ["r.toml"])


def test_check_takes_rules_option_and_positional_is_deprecated(cwd: Path) -> None:
    shipped = str(default_rule_files()[0])
    result = CliRunner().invoke(main, ["rules", "check", shipped], catch_exceptions=False)
    assert result.exit_code == 0 and "OK: " in result.output
    assert "`rules check FILE` is deprecated; write `rules check --rules FILE`" in result.output
    code, out = invoke("check", "--rules", shipped)
    assert code == 0 and "deprecated" not in out


EVAL_RULES = """[[rules]]
name = "ipo"
tags = ["ipo"]
query = 'OpenAI NEAR/5 IPO'
weight = 2.0

[[rules]]
name = "cloud"
tags = ["azure"]
query = 'Azure'
weight = 1.0
"""


def test_eval_tag_lists_each_tags_misses_with_the_reason(cwd: Path) -> None:
    rules = cwd / "r.toml"
    rules.write_text(EVAL_RULES, encoding="utf-8")
    labels = cwd / "l.jsonl"
    rows = [
        {"id": "hit", "title": "OpenAI weighs an IPO", "relevant": True, "topics": ["ipo"]},
        {"id": "fp", "title": "OpenAI denies IPO rumours", "relevant": False, "topics": []},
        {"id": "silent", "title": "OpenAI may list its shares", "relevant": True, "topics": ["ipo"]},
        {"id": "low", "title": "Azure and the IPO", "relevant": True, "topics": ["ipo", "azure"]},
    ]
    labels.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    code, out = invoke("eval", str(labels), "--rules", str(rules), "--tag", "ipo")
    assert code == 0
    section = out[out.index("tag ipo: "):].splitlines()
    assert section[0].startswith("tag ipo: precision 0.500  recall 0.333")
    assert section[1:4] == ["  false positives: 1", "    [fp] 'OpenAI denies IPO rumours' score 3",
                            "        ipo: OpenAI, IPO"]
    text = "\n".join(section)
    assert "    [silent] 'OpenAI may list its shares' score 0\n        no rule matched" in text
    assert "    [low] 'Azure and the IPO' score 1.5\n        score 1.5 below the threshold\n        cloud: Azure" in text
    code, out = invoke("eval", str(labels), "--rules", str(rules), "--tag", "all")
    assert "tag azure: " in out and "tag ipo: " in out
    code, out = invoke("eval", str(labels), "--rules", str(rules), "--json")
    data = json.loads(out)
    assert data["per_tag_misses"]["ipo"]["false_negatives"][0]["why"] == ["no rule matched"]
    bad = CliRunner().invoke(main, ["rules", "eval", str(labels), "--rules", str(rules), "--tag", "ipx"])
    assert bad.exit_code == 2 and "no labeled example carries topic 'ipx' (topics: azure, ipo)" in bad.output


def test_test_command_scores_feed_author_and_url_scopes(cwd: Path) -> None:
    rules = cwd / "r.toml"
    rules.write_text("threshold = 1.0\n[[rules]]\nname = 'wire'\ntags = ['t']\n"
                     "query = 'feed:Reuters AND author:Smith AND url:openai'\n", encoding="utf-8")
    args = ["test", "--rules", str(rules), "--text", "anything", "--feed", "Reuters Tech", "--author", "Jane Smith"]
    code, out = invoke(*args, "--url", "https://x.example/openai-news")
    assert code == 0 and "FLAGGED" in out.splitlines()[0]
    code, out = invoke(*args, "--url", "https://x.example/other")
    assert "not flagged" in out.splitlines()[0]
