"""The traps of the rule language (issue 11), each with the text that must and must not match.

NEAR over OR-groups holding aliases, lower-case operators (literal, with a
warning), hyphens and joined forms, `lead:`, penalty rules, per-rule title
weights, `extends`, and the limits that keep a rule file from loading for
minutes or meaning nothing (NaN).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from rules_helpers import one_rule, run, write

from core.errors import QueryError, RuleError
from rules import load_rules, parse_query
from rules.query import MAX_NEAR

ALIASES = {"microsoft": ["Microsoft", "=MSFT", "Satya Nadella"], "openai": ["OpenAI", "ChatGPT"]}


def matches(query: str, aliases: dict[str, list[str]] | None = None, **fields: str) -> bool:
    return one_rule(query, aliases if aliases is not None else ALIASES).evaluate(fields).flagged


# ------------------------------------------------------------- NEAR operands

NEAR_CASES = [
    ("OpenAI NEAR/15 (@microsoft OR Azure)", "OpenAI runs on Azure", True),
    ("OpenAI NEAR/15 (@microsoft OR Azure)", "Satya Nadella praised OpenAI", True),
    ("OpenAI NEAR/15 (@microsoft OR Azure)", "MSFT and OpenAI", True),
    ("OpenAI NEAR/15 (@microsoft OR Azure)", "msft and OpenAI", False),  # =MSFT keeps its case
    ("OpenAI NEAR/2 (@microsoft OR Azure)", "OpenAI, Google and Azure", False),
    ("(@openai OR Altman) NEAR/3 (@microsoft OR (Azure OR Bing))", "ChatGPT comes to Bing", True),
    ("(@openai OR Altman) NEAR/3 (@microsoft OR (Azure OR Bing))", "ChatGPT is not on the Bing app", False),
    ("@openai NEAR/5 @microsoft", "Microsoft invests in ChatGPT", True),
]


@pytest.mark.parametrize(("query", "text", "expected"), NEAR_CASES)
def test_near_takes_or_groups_of_aliases(query: str, text: str, expected: bool) -> None:
    assert matches(query, text=text) is expected


def test_near_still_refuses_and_inside_an_operand() -> None:
    with pytest.raises(QueryError, match="NEAR operands must be"):
        parse_query("a NEAR/3 (b OR (c AND d))", {})


@pytest.mark.parametrize("distance", [f"{MAX_NEAR + 1}", "99999999999999999999"])
def test_near_distance_is_capped(distance: str) -> None:
    with pytest.raises(QueryError, match=f"at most {MAX_NEAR} words") as info:
        parse_query(f"a NEAR/{distance} b", {})
    assert info.value.column == 3
    parse_query(f"a NEAR/{MAX_NEAR} b", {})


# ------------------------------------------------------ lower-case operators

WARN_CASES = [
    ("Microsoft and OpenAI", 11, "write AND"),
    ("Microsoft or OpenAI", 11, "write OR"),
    ("Microsoft not Google", 11, "write NOT"),
    ("Microsoft near/10 OpenAI", 11, "write NEAR/10"),
    ("Microsoft Near/10 OpenAI", 11, "write NEAR/10"),
    ("OpenAI/3 Microsoft", 1, "did you mean OpenAI NEAR/3"),
]


@pytest.mark.parametrize(("query", "col", "says"), WARN_CASES)
def test_operator_like_words_warn(query: str, col: int, says: str) -> None:
    warnings: list[tuple[str, int]] = []
    parse_query(query, {}, warnings)
    assert len(warnings) == 1
    assert says in warnings[0][0] and warnings[0][1] == col


@pytest.mark.parametrize("query", ['Microsoft "and" OpenAI', "Microsoft AND OpenAI", '"Microsoft and OpenAI"', "android"])
def test_no_warning_when_written_deliberately(query: str) -> None:
    warnings: list[tuple[str, int]] = []
    parse_query(query, {}, warnings)
    assert warnings == []


def test_lowercase_or_stays_a_literal_word() -> None:
    # The decision: literal plus a warning, so a rule's meaning does not change under it.
    assert not run("Azure or AWS", text="Azure grew").flagged
    assert run("Azure or AWS", text="Azure or AWS").flagged


def test_rules_check_prints_warnings_with_place(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    f = write(tmp_path, "r.toml", "[[rules]]\nname = 'lax'\ntags = ['t']\nquery = 'Microsoft and OpenAI/3'\n")
    out = subprocess.run([sys.executable, "-m", "monitor", "rules", "check", "--rules", str(f)], env=subprocess_env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.strip().splitlines()
    assert lines[0].startswith(f"monitor: {f}:4:20: rule lax: warning: 'and' is searched as the word")
    assert lines[1].startswith(f"monitor: {f}:4:24: rule lax: warning: 'OpenAI/3' is searched literally")
    assert "OK: 1 rules, 0 aliases, 2 warnings" in out.stdout


# ------------------------------------------------------- hyphens and joins

FORM_CASES = [
    ('"data center"', "a new data center", True),
    ('"data center"', "a new data-center", True),
    ('"data center"', "a new datacenter", True),
    ('"data center"', "a new Data-Centre", False),
    ('"data center"', "a new data/center", False),
    ('"data center"', "data centers", False),
    ('"data center*"', "datacenters and data-centres", True),
    ('"data-center"', "a data center", True),  # written with a hyphen: the same term
    ("data-center", "datacenter", True),
    ('"Open AI"', "Open-AI said", True),
    ('"Open AI"', "OpenAI said", True),
    ('"Open AI"', "open ai said", True),
    ("OpenAI", "Open-AI said", False),  # a word is not split; write the phrase "Open AI" for all three forms
    ('="Open AI"', "OpenAI said", True),
    ('="Open AI"', "openai said", False),
    ('"public benefit corporation"', "a public-benefit corporation", True),
    ('"public benefit corporation"', "a publicbenefitcorporation", False),  # three words do not join
    ('"GPT 4"', "GPT4", True),
    ("AT&T", "AT-T", False),
]


@pytest.mark.parametrize(("query", "text", "expected"), FORM_CASES)
def test_hyphens_and_joined_forms(query: str, text: str, expected: bool) -> None:
    assert matches(query, text=text) is expected


def test_joined_form_spans_the_joined_word() -> None:
    tagging = run('"data center"', text="the datacenter opens")
    assert [(m.start, m.end) for m in tagging.matches] == [(4, 14)]


def test_hyphenated_form_counts_as_one_word_for_near() -> None:
    assert matches('Microsoft NEAR/2 "data center"', text="Microsoft data-center plans")


# ------------------------------------------------------------------ lead:

FILLER = " ".join(["word"] * 45)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"title": "OpenAI files for IPO", "text": FILLER}, True),
        ({"title": "", "text": "OpenAI files for IPO. " + FILLER}, True),
        ({"title": "", "text": FILLER + " OpenAI"}, False),
        ({"title": "", "text": " ".join(["word"] * 39) + " OpenAI"}, True),
        ({"title": "", "text": " ".join(["word"] * 40) + " OpenAI"}, False),
    ],
)
def test_lead_is_the_title_and_the_first_40_words(fields: dict[str, str], expected: bool) -> None:
    assert matches("lead:OpenAI", **fields) is expected


def test_lead_matches_are_reported_in_the_text() -> None:
    tagging = run("lead:OpenAI AND IPO", text="OpenAI plans an IPO")
    assert {(m.field, m.term) for m in tagging.matches} == {("text", "lead:OpenAI"), ("text", "IPO")}


def test_lead_near_and_unscoped_twin() -> None:
    text = FILLER + " OpenAI weighs an IPO"
    assert not matches("lead:(OpenAI NEAR/3 IPO)", text=text)
    assert matches("OpenAI NEAR/3 IPO", text=text)
    assert matches("lead:(OpenAI NEAR/3 IPO)", text="OpenAI weighs an IPO " + FILLER)


def test_lead_inside_another_field_is_an_error() -> None:
    with pytest.raises(QueryError, match="inside lead:"):
        parse_query("lead:(title:x)", {})


# ------------------------------------------------- penalties, title weight


def rules_file(tmp_path: Path, body: str, name: str = "r.toml") -> Path:
    return write(tmp_path, name, body)


PENALTY = """threshold = 2.0
[[rules]]
name = "deal"
tags = ["partnership"]
query = 'Microsoft NEAR/5 OpenAI'
weight = 2.0

[[rules]]
name = "howto-penalty"
query = 'lead:("how to" OR tutorial)'
weight = -2.0
"""


def test_a_penalty_rule_lowers_the_score(tmp_path: Path) -> None:
    rs = load_rules([rules_file(tmp_path, PENALTY)])
    plain = rs.evaluate({"text": "Microsoft and OpenAI sign a deal"})
    howto = rs.evaluate({"text": "How to use Microsoft and OpenAI tools"})
    assert plain.flagged and plain.score == 2.0
    assert not howto.flagged and howto.score == 0.0
    assert {m.rule for m in howto.matches} == {"deal", "howto-penalty"}
    assert howto.tags == ["partnership"]  # its score, 2, is the tag's: the penalty lists no tag


def test_a_penalty_with_tags_removes_a_tag_it_cancels(tmp_path: Path) -> None:
    body = PENALTY.replace("weight = -2.0", "weight = -2.0\ntags = [\"partnership\"]")
    rs = load_rules([rules_file(tmp_path, body)])
    t = rs.evaluate({"text": "How to use Microsoft and OpenAI tools"})
    assert t.tags == [] and t.tag_scores == {}


def test_per_rule_title_weight(tmp_path: Path) -> None:
    body = "[[rules]]\nname='a'\ntags=['t']\nquery='Azure'\nweight=1.0\ntitle_weight=3.0\n" \
           "[[rules]]\nname='b'\ntags=['u']\nquery='Bing'\nweight=1.0\n"
    rs = load_rules([rules_file(tmp_path, body)])
    assert rs.evaluate({"title": "Azure"}).score == 3.0
    assert rs.evaluate({"title": "Bing"}).score == 1.5  # the set's default
    assert rs.evaluate({"text": "Azure"}).score == 1.0


# ------------------------------------------------------------- extends

LOCAL = """extends = "partnership"
threshold = 3.0
drop = ["openai-ipo"]

[extend_aliases]
openai = ["Open AI"]

[[rules]]
name = "openai-pbc"
override = true
weight = 0.5

[[rules]]
name = "local-stargate"
tags = ["compute"]
query = 'Stargate NEAR/10 @openai'
weight = 3.0
"""


def test_extends_builds_on_the_shipped_rules(tmp_path: Path) -> None:
    shipped = load_rules([Path(__file__).parents[1] / "rules" / "partnership.toml"])
    rs = load_rules([rules_file(tmp_path, LOCAL)])
    names = [r.name for r in rs.rules]
    assert "openai-ipo" in [r.name for r in shipped.rules] and "openai-ipo" not in names
    assert len(rs.rules) == len(shipped.rules)  # one dropped, one added
    assert "Open AI" in rs.aliases["openai"] and rs.aliases["openai"][0] == shipped.aliases["openai"][0]
    pbc, base = rs.rule("openai-pbc"), shipped.rule("openai-pbc")
    assert pbc is not None and base is not None
    assert pbc.weight == 0.5 and pbc.query == base.query and pbc.tags == base.tags
    assert rs.threshold == 3.0
    assert rs.evaluate({"text": "Stargate is Open-AI's project"}).flagged  # the added entry, hyphenated


EXTEND_ERRORS = [
    ('extends = "partnershp"\n', ":1: extends: no shipped rule set 'partnershp'"),
    ('extends = "partnership"\n[[rules]]\nname = "openai-pbx"\noverride = true\nweight = 1.0\n',
     ":3: rule openai-pbx: override = true, but no rule 'openai-pbx' in the files before this one (did you mean openai-pbc?)"),
    ('extends = "partnership"\ndrop = ["nope"]\n', ":2: drop: no rule 'nope' in the files before this one"),
    ('extends = "partnership"\n[extend_aliases]\nopnai = ["x"]\n', ":3: extend_aliases: no alias @opnai to extend (did you mean openai?)"),
    ('extends = "partnership"\n[[rules]]\nname = "openai-pbc"\ntags = ["x"]\nquery = "x"\n',
     ":3: rule openai-pbc: duplicate rule name (first defined at"),
]


@pytest.mark.parametrize(("body", "message"), EXTEND_ERRORS)
def test_extends_mistakes_have_a_place(tmp_path: Path, body: str, message: str) -> None:
    f = rules_file(tmp_path, body)
    with pytest.raises(RuleError) as info:
        load_rules([f])
    assert any(p.startswith(str(f)) and message in p for p in info.value.problems), info.value.problems


def test_extending_what_the_config_already_loads_is_not_a_duplicate(tmp_path: Path) -> None:
    shipped = Path(__file__).parents[1] / "rules" / "partnership.toml"
    rs = load_rules([shipped, rules_file(tmp_path, LOCAL)])
    assert len(rs.files) == 2


# ------------------------------------------------------- numbers and limits

NUMBER_ERRORS = [
    ("threshold = nan\n", ":1: threshold must be a number above 0 and at most 10000, not nan"),
    ("threshold = inf\n", ":1: threshold must be a number above 0 and at most 10000, not inf"),
    ("threshold = 1e9\n", ":1: threshold must be a number above 0"),
    ("title_weight = nan\n", ":1: title_weight must be a number from 1 to 100, not nan"),
    ("title_weight = 1e6\n", ":1: title_weight must be a number from 1 to 100"),
]
RULE = "[[rules]]\nname = 'a'\ntags = ['t']\nquery = 'x'\n"


@pytest.mark.parametrize(("top", "message"), NUMBER_ERRORS)
def test_settings_must_be_finite_and_in_range(tmp_path: Path, top: str, message: str) -> None:
    f = rules_file(tmp_path, top + RULE)
    with pytest.raises(RuleError) as info:
        load_rules([f])
    assert info.value.problems == [f"{f}{message}"] or message in info.value.problems[0]


@pytest.mark.parametrize(("line", "message"), [
    ("weight = nan", "weight must be a number from -1000 to 1000 other than 0"),
    ("weight = -inf", "weight must be a number from -1000 to 1000 other than 0"),
    ("weight = 1e300", "weight must be a number from -1000 to 1000 other than 0"),
    ("title_weight = nan", "title_weight must be a number from 1 to 100, not nan"),
    ("title_weight = 0.5", "title_weight must be a number from 1 to 100, not 0.5"),
])
def test_rule_numbers_must_be_finite_and_in_range(tmp_path: Path, line: str, message: str) -> None:
    f = rules_file(tmp_path, RULE + line + "\n")
    with pytest.raises(RuleError) as info:
        load_rules([f])
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(f"{f}:5: rule a: {message}")


def test_a_positive_rule_still_needs_tags(tmp_path: Path) -> None:
    f = rules_file(tmp_path, "[[rules]]\nname = 'a'\nquery = 'x'\n")
    with pytest.raises(RuleError, match="missing tags"):
        load_rules([f])


ALIAS_ERRORS = [
    ('a = ["@a"]\n', "alias @a refers to itself: @a -> @a"),
    ('a = ["x", "@b"]\nb = ["@c"]\nc = ["@a"]\n', "alias @c refers to itself: @a -> @b -> @c -> @a"),
    ('a = ["@nope"]\n', "alias @a: unknown alias @nope"),
]


@pytest.mark.parametrize(("aliases", "message"), ALIAS_ERRORS)
def test_recursive_aliases_are_refused(tmp_path: Path, aliases: str, message: str) -> None:
    f = rules_file(tmp_path, "[aliases]\n" + aliases + RULE.replace("'x'", "'@a'"))
    with pytest.raises(RuleError) as info:
        load_rules([f])
    line = 4 if "@c refers" in message else 2
    assert info.value.problems == [f"{f}:{line}: {message}"]  # and no "unknown alias" for the rules using it


def test_aliases_may_refer_to_other_aliases(tmp_path: Path) -> None:
    f = rules_file(tmp_path, 'threshold = 1.0\n[aliases]\nms = ["Microsoft", "=MSFT"]\nms_all = ["@ms", "Azure"]\n'
                             + RULE.replace("'x'", "'@ms_all'"))
    rs = load_rules([f])
    assert rs.aliases["ms_all"] == ["Microsoft", "=MSFT", "Azure"]
    assert rs.evaluate({"text": "MSFT rose"}).flagged and not rs.evaluate({"text": "msft rose"}).flagged


def test_limits_are_one_clear_error_each(tmp_path: Path) -> None:
    long_query = " OR ".join(f"w{i}" for i in range(1000))
    f = rules_file(tmp_path, f"[[rules]]\nname = 'a'\ntags = ['t']\nquery = '{long_query}'\n")
    with pytest.raises(RuleError) as info:
        load_rules([f])
    assert info.value.problems == [f"{f}:4:10: rule a: query is {len(long_query)} characters long; the limit is 4000"]

    entries = ", ".join(f'"w{i}"' for i in range(1001))
    f = rules_file(tmp_path, f"[aliases]\nbig = [{entries}]\n" + RULE)
    with pytest.raises(RuleError) as info:
        load_rules([f])
    assert info.value.problems == [f"{f}:2: alias @big has 1,001 entries; the limit is 1,000"]

    aliases = "".join(f"big{n} = [" + ", ".join(f'"w{n}x{i}"' for i in range(1000)) + "]\n" for n in range(6))
    f = rules_file(tmp_path, f"[aliases]\n{aliases}"
                   + "[[rules]]\nname = 'a'\ntags = ['t']\nquery = '" + " OR ".join(f"@big{n}" for n in range(6)) + "'\n")
    with pytest.raises(RuleError) as info:
        load_rules([f])
    assert info.value.problems == [f"{f}:11: rule a: query has 6,000 terms once its aliases are expanded; the limit is 5,000"]


def test_too_many_rules_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rules import load as load_module

    body = "".join(f"[[rules]]\nname = 'r{i}'\ntags = ['t']\nquery = 'w{i}'\n" for i in range(30))
    f = rules_file(tmp_path, body)
    monkeypatch.setattr(load_module, "MAX_RULES", 20)  # the real limit is 20,000; the check is the same
    with pytest.raises(RuleError, match="more than 20 rules"):
        load_rules([f])


# ------------------------------------------------------------- count(...)

COUNT_CASES = [
    ("count(@openai) >= 2", {"text": "OpenAI said ChatGPT grew"}, True),
    ("count(@openai) >= 2", {"text": "OpenAI said it grew"}, False),
    ("count(@openai)>=2", {"title": "OpenAI", "text": "OpenAI again"}, True),
    ("title:count(OpenAI) >= 2", {"title": "OpenAI", "text": "OpenAI again"}, False),
    ("count(OpenAI OR openai) >= 2", {"text": "OpenAI once"}, False),  # one span found twice counts once
    ("count(lead:OpenAI) >= 2", {"text": "OpenAI and OpenAI " + FILLER}, True),
    ("count(lead:OpenAI) >= 2", {"text": "OpenAI " + FILLER + " OpenAI"}, False),
    ("count(OpenAI) >= 2 AND Microsoft", {"text": "OpenAI, OpenAI"}, False),
    ("count (OpenAI)", {"text": "count OpenAI"}, True),  # with a space it is the word "count"
]


@pytest.mark.parametrize(("query", "fields", "expected"), COUNT_CASES)
def test_count_needs_that_many_mentions(query: str, fields: dict[str, str], expected: bool) -> None:
    assert matches(query, **fields) is expected


@pytest.mark.parametrize(("query", "message", "col"), [
    ("count(OpenAI)", "count(...) must be followed by >= n", 1),
    ("count(OpenAI) > 2", "count(...) must be followed by >= n", 1),
    ("count(OpenAI) >= 0", "n must be from 1 to 1000", 1),
    ("x AND count(a AND b) >= 2", "count(...) takes a word, phrase, alias or (OR-group of them)", 7),
    ("count(OpenAI", "'(' is never closed", 6),
])
def test_count_errors(query: str, message: str, col: int) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(query, {})
    assert message in info.value.message and info.value.column == col


def test_lead_spans_point_into_the_text_as_given() -> None:
    text = "Hello  there,\n\n OpenAI said"
    [m] = run("lead:OpenAI", text=text).matches
    assert (m.field, text[m.start:m.end]) == ("text", "OpenAI")


def test_eval_and_test_show_the_warnings_too(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    f = write(tmp_path, "r.toml", "threshold = 1.0\n[[rules]]\nname = 'lax'\ntags = ['t']\nquery = 'Azure or AWS'\n")
    labels = write(tmp_path, "l.jsonl", '{"text": "Azure or AWS", "relevant": true}\n')
    for args in (["eval", str(labels)], ["test", "--text", "Azure or AWS"]):
        out = subprocess.run([sys.executable, "-m", "monitor", "rules", *args, "--rules", str(f)], env=subprocess_env,
                             cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert f"{f}:5:16: rule lax: warning: 'or' is searched as the word 'or'" in out.stderr
