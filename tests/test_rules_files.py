"""Rule files: loading, every kind of error (all listed at once), several files together."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import RuleError
from rules import default_rule_files, load_rules
from rules_helpers import write

DATA = Path(__file__).parent / "data" / "rules"

GOOD = """\
threshold = 2.5
title_weight = 2.0

[aliases]
openai = ["OpenAI", "ChatGPT"]

[[rules]]
name = "openai-ipo"
tags = ["ipo"]
query = '@openai NEAR/15 (=IPO OR "going public")'
weight = 3.0
source = "seed: What's at Stake: The IPO Factor"
"""


def problems(paths: list[Path]) -> list[str]:
    with pytest.raises(RuleError) as info:
        load_rules(paths)
    return info.value.problems


def test_good_file_loads(tmp_path: Path) -> None:
    rs = load_rules([write(tmp_path, "r.toml", GOOD)])
    assert rs.threshold == 2.5 and rs.title_weight == 2.0
    rule = rs.rules[0]
    assert (rule.name, rule.tags, rule.weight, rule.line) == ("openai-ipo", ("ipo",), 3.0, 8)
    assert rule.source == "seed: What's at Stake: The IPO Factor"
    tagging = rs.evaluate({"title": "", "text": "ChatGPT maker plans an IPO"})
    assert tagging.flagged and tagging.tags == ["ipo"] and tagging.score == 3.0
    # in the title the rule counts title_weight times
    assert rs.evaluate({"title": "ChatGPT maker plans an IPO"}).score == 6.0


def test_broken_file_lists_every_problem_with_place() -> None:
    path = DATA / "broken.toml"
    got = problems([path])
    f = str(path)
    expected = [
        f"{f}:3: unknown key 'treshold' (did you mean threshold?)",
        f"{f}:7: alias @empty must be a non-empty list of strings",
        f"{f}:12:10: rule unbalanced: unbalanced parenthesis: '(' is never closed",
        f"{f}:18:10: rule typo-alias: unknown alias @opnai",
        f"{f}:23:10: rule typo-field: unknown field titel: (fields are title:, text:, lead:, author:, url:, feed:)",
        f"{f}:29: rule bad-weight: weight must be a number from -1000 to 1000 other than 0 (below 0 for a penalty rule), not 'heavy'",
        f"{f}:31: rule no-tags: missing tags (a list like tags = [\"ipo\"])",
        f"{f}:39: rule unbalanced: unknown key 'wieght' (did you mean weight?)",
        f"{f}:36: rule unbalanced: duplicate rule name (first defined at {f}:10)",
        f"{f}:37: rule unbalanced: tag 'Data Centers' must be lower-case letters, digits, '-' or '_'",
        f"{f}:41: rule #7: missing name",
    ]
    assert got == expected


def test_a_bad_file_spoils_the_whole_set(tmp_path: Path) -> None:
    # Loading never half-succeeds: a good file beside a bad one is not loaded either.
    good = write(tmp_path, "good.toml", GOOD)
    bad = write(tmp_path, "bad.toml", '[[rules]]\nname = "x"\ntags = ["t"]\nquery = "a AND"\n')
    got = problems([good, bad])
    assert got == [f"{bad}:4:15: rule x: query ends where a term was expected"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("threshold = \n", ":1:13: TOML syntax error: Invalid value"),
        ('[[rules]]\nname = "a"\nname = "b"\n', ":3:"),
        ("threshold = -1\n[[rules]]\nname='a'\ntags=['t']\nquery='x'\n", ":1: threshold must be a number above 0 and at most 10000, not -1"),
        ("title_weight = 0.5\n[[rules]]\nname='a'\ntags=['t']\nquery='x'\n", ":1: title_weight must be a number from 1 to 100, not 0.5"),
        ("aliases = 3\n[[rules]]\nname='a'\ntags=['t']\nquery='x'\n", ":1: aliases must be a table"),
        ("[aliases]\n'a b' = ['x']\n[[rules]]\nname='a'\ntags=['t']\nquery='x'\n", ":2: alias 'a b': names use letters"),
        ("[aliases]\nx = ['ok', 'ai*']\n[[rules]]\nname='a'\ntags=['t']\nquery='@x'\n", ":2: alias @x: prefix 'ai*' is too short"),
        ("rules = 3\n", ": rules must be an array of tables"),
        ("[[rules]]\nname='a b'\ntags=['t']\nquery='x'\n", ":2: rule a b: name 'a b' may use letters"),
        ("[[rules]]\nname='a'\ntags=[]\nquery='x'\n", ":3: rule a: tags must be a non-empty list of strings"),
        ("[[rules]]\nname='a'\ntags=['t']\n", ":1: rule a: missing query"),
        ("[[rules]]\nname='a'\ntags=['t']\nquery=3\n", ":4: rule a: query must be a string"),
        ("[[rules]]\nname='a'\ntags=['t']\nquery='x'\nweight=0\n", ":5: rule a: weight must be a number from -1000 to 1000 other than 0"),
        ("[[rules]]\nname='a'\ntags=['t']\nquery='x'\nsource=1\n", ":5: rule a: source must be a string"),
        ("[[rules]]\nname='a'\ntags=['t']\nquery='''\n(x OR\ny'''\n", ":4: rule a: unbalanced parenthesis: '(' is never closed (column 1 of the query)"),
        ("threshold = 2\n", ": no rules defined"),
        ("[[rules]]\nname='a'\ntags=['t']\nquery='" + "(" * 40 + "x" + ")" * 40 + "'\n", ":4:40: rule a: nested too deeply"),
    ],
)
def test_each_kind_of_file_error(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, "r.toml", text)
    got = problems([path])
    assert len(got) == 1, got
    assert got[0].startswith(str(path)) and expected in got[0], got[0]


def test_missing_file_and_empty_list(tmp_path: Path) -> None:
    assert problems([tmp_path / "nope.toml"]) == [f"{tmp_path / 'nope.toml'}: no such rule file"]
    assert problems([]) == ["no rule files given"]


def test_aliases_are_shared_and_must_be_unique(tmp_path: Path) -> None:
    a = write(tmp_path, "a.toml", "[aliases]\nopenai = ['OpenAI']\n")
    b = write(tmp_path, "b.toml", "[[rules]]\nname='r'\ntags=['t']\nquery='@openai'\n")
    assert load_rules([a, b]).evaluate({"text": "OpenAI"}).flagged is False  # weight 1 < threshold 2
    assert load_rules([a, b]).evaluate({"text": "OpenAI"}).score == 1.0
    dup = write(tmp_path, "c.toml", "[aliases]\nopenai = ['ChatGPT']\n")
    assert problems([a, b, dup]) == [f"{dup}:2: alias @openai is already defined at {a}:2; add entries to it under [extend_aliases]"]


def test_later_file_overrides_threshold_and_rule_names_are_global(tmp_path: Path) -> None:
    rs = load_rules(default_rule_files() + [DATA / "extra.toml"])
    assert rs.threshold == 3.0
    assert rs.rule("openai-ipo-url") is not None and rs.rule("openai-ipo") is not None
    clash = write(tmp_path, "clash.toml", "[[rules]]\nname='openai-ipo'\ntags=['t']\nquery='x'\n")
    got = problems(default_rule_files() + [clash])
    assert len(got) == 1 and got[0].startswith(f"{clash}:2: rule openai-ipo: duplicate rule name (first defined at ")


def test_version_is_stable_and_follows_content(tmp_path: Path) -> None:
    a = load_rules([write(tmp_path, "a.toml", GOOD)])
    b = load_rules([write(tmp_path, "b.toml", "# a comment changes nothing\n" + GOOD)])
    c = load_rules([write(tmp_path, "c.toml", GOOD.replace("weight = 3.0", "weight = 3.5"))])
    d = load_rules([write(tmp_path, "d.toml", GOOD.replace('"ChatGPT"', '"ChatGPT", "Sam Altman"'))])
    assert a.version == b.version
    assert len({a.version, c.version, d.version}) == 3


def test_default_rules_cover_the_required_tags_and_name_their_source() -> None:
    rs = load_rules(default_rule_files())
    tags = {t for r in rs.rules for t in r.tags}
    assert {"partnership", "investment", "azure", "copilot", "pbc", "ipo", "lawsuit", "enterprise",
            "data_centers", "api"} <= tags
    assert all(r.source.startswith("seed: ") for r in rs.rules)
