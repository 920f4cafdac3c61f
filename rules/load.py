"""Reading rule files: TOML in, a compiled `RuleSet` out, or every problem at once.

A rule file holds an optional ``threshold`` and ``title_weight``, an
``[aliases]`` table (name -> list of terms) and ``[[rules]]`` entries with
``name``, ``tags``, ``query``, ``weight`` and an optional ``source``. Several
files load as one set: aliases are shared between them, rule names must be
unique across them, and a ``threshold``/``title_weight`` set by a later file
overrides an earlier one (a local file on top of the shipped one).

`load_rules` checks everything before compiling and raises one `RuleError`
whose problems read ``file:line:col: rule NAME: what is wrong``. tomllib keeps
no positions, so lines are found by scanning the file text for the key; the
column of a query error is exact for single-line queries. Loading never
half-succeeds. This module reads files and nothing else: no config, no store.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

from core.errors import RuleError
from rules.engine import DEFAULT_THRESHOLD, DEFAULT_TITLE_WEIGHT, Rule, RuleSet
from rules.query import QueryError, Term, alias_term, parse_query

_TOP_KEYS = {"threshold", "title_weight", "aliases", "rules"}
_RULE_KEYS = {"name", "tags", "query", "weight", "source"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TAG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_KEY_LINE = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*=""")
_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")


def default_rule_files() -> list[Path]:
    """The shipped default rule set (package data), used when the config names none."""
    return [Path(str(resources.files("rules").joinpath("partnership.toml")))]


@dataclass
class _Layout:
    """Where keys are written in a rule file (1-based lines), found by scanning its text."""

    top: dict[str, int] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    rules: list[dict[str, int]] = field(default_factory=list)


def _layout(text: str) -> _Layout:
    out = _Layout()
    section: dict[str, int] = out.top
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("[[") and stripped[2:].split("]]")[0].strip() == "rules":
            section = {"[[rules]]": number}
            out.rules.append(section)
            continue
        if stripped.startswith("[") and not stripped.startswith("[["):
            name = stripped[1:].split("]")[0].strip()
            section = out.aliases if name == "aliases" else {}
            if name == "aliases":
                out.top.setdefault("aliases", number)
            continue
        m = _KEY_LINE.match(line)
        if m:
            key = m.group(1).strip("\"'")
            section.setdefault(key, number)
    return out


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, file: str, line: int | None, what: str, *, col: int | None = None, rule: str | None = None) -> None:
        where = file
        if line is not None:
            where += f":{line}"
            if col is not None:
                where += f":{col}"
        self.items.append(f"{where}: " + (f"rule {rule}: " if rule else "") + what)


@dataclass
class _File:
    name: str
    text: str
    data: dict[str, Any]
    layout: _Layout


def _read(path: Path, problems: _Problems) -> _File | None:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.add(name, None, "no such rule file")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(name, None, f"cannot read rule file: {exc}")
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_POS.search(msg)
        if m:
            problems.add(name, int(m.group(1)), "TOML syntax error: " + _TOML_POS.sub("", msg).strip(), col=int(m.group(2)))
        else:
            problems.add(name, None, f"TOML syntax error: {msg}")
        return None
    return _File(name, text, data, _layout(text))


def _suggest(word: str, options: Iterable[str]) -> str:
    close = get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def load_rules(paths: Iterable[str | PathLike[str]]) -> RuleSet:
    """Read, check and compile rule files into one `RuleSet`.

    Raises `RuleError` listing every problem in every file; nothing is
    compiled unless all of them are valid.
    """
    problems = _Problems()
    files: list[_File] = []
    path_list = [Path(p) for p in paths]
    if not path_list:
        raise RuleError(["no rule files given"])
    for path in path_list:
        f = _read(path, problems)
        if f is not None:
            files.append(f)

    threshold = DEFAULT_THRESHOLD
    title_weight = DEFAULT_TITLE_WEIGHT
    alias_entries: dict[str, list[str]] = {}
    alias_terms: dict[str, list[Term]] = {}
    alias_where: dict[str, str] = {}

    # Settings and aliases of every file first: aliases are shared by all files.
    for f in files:
        for key in f.data:
            if key not in _TOP_KEYS:
                problems.add(f.name, f.layout.top.get(key), f"unknown key {key!r}{_suggest(key, _TOP_KEYS)}")
        if "threshold" in f.data:
            value = f.data["threshold"]
            if not _number(value) or value <= 0:
                problems.add(f.name, f.layout.top.get("threshold"), f"threshold must be a number above 0, not {value!r}")
            else:
                threshold = float(value)
        if "title_weight" in f.data:
            value = f.data["title_weight"]
            if not _number(value) or value < 1:
                problems.add(f.name, f.layout.top.get("title_weight"), f"title_weight must be a number of at least 1, not {value!r}")
            else:
                title_weight = float(value)
        aliases = f.data.get("aliases", {})
        if not isinstance(aliases, dict):
            problems.add(f.name, f.layout.top.get("aliases"), "aliases must be a table: [aliases] name = [\"term\", ...]")
            continue
        for name, entries in aliases.items():
            line = f.layout.aliases.get(name)
            where = f"{f.name}:{line}" if line else f.name
            if not re.match(r"^[A-Za-z0-9_-]+$", name):
                problems.add(f.name, line, f"alias {name!r}: names use letters, digits, '-' and '_'")
                continue
            if name in alias_where:
                problems.add(f.name, line, f"alias @{name} is already defined at {alias_where[name]}")
                continue
            alias_where[name] = where
            if not isinstance(entries, list) or not entries or not all(isinstance(e, str) for e in entries):
                problems.add(f.name, line, f"alias @{name} must be a non-empty list of strings")
                continue
            terms: list[Term] = []
            for entry in entries:
                try:
                    terms.append(alias_term(entry))
                except QueryError as exc:
                    problems.add(f.name, line, f"alias @{name}: {exc.message}")
            alias_entries[name] = list(entries)
            alias_terms[name] = terms

    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for f in files:
        raw_rules = f.data.get("rules", [])
        if not isinstance(raw_rules, list):
            problems.add(f.name, f.layout.top.get("rules"), "rules must be an array of tables: [[rules]]")
            continue
        for index, raw in enumerate(raw_rules):
            rule = _check_rule(f, index, raw, alias_terms, seen, problems)
            if rule is not None:
                rules.append(rule)
    if files and not rules and not problems.items:
        problems.add(", ".join(f.name for f in files), None, "no rules defined: add at least one [[rules]] entry")
    if problems.items:
        raise RuleError(problems.items)
    return RuleSet(
        rules, threshold=threshold, title_weight=title_weight, aliases=alias_entries, files=[f.name for f in files]
    )


def _check_rule(
    f: _File,
    index: int,
    raw: Any,
    aliases: Mapping[str, list[Term]],
    seen: dict[str, str],
    problems: _Problems,
) -> Rule | None:
    lines = f.layout.rules[index] if index < len(f.layout.rules) else {}
    header = lines.get("[[rules]]")
    if not isinstance(raw, dict):
        problems.add(f.name, header, f"rules entry {index + 1} is not a table")
        return None
    name = raw.get("name")
    label = name if isinstance(name, str) and name else f"#{index + 1}"
    before = len(problems.items)

    def bad(key: str, what: str, col: int | None = None) -> None:
        problems.add(f.name, lines.get(key, header), what, col=col, rule=label)

    for key in raw:
        if key not in _RULE_KEYS:
            bad(key, f"unknown key {key!r}{_suggest(key, _RULE_KEYS)}")
    if not isinstance(name, str) or not name:
        bad("name", "missing name")
    elif not _NAME.match(name):
        bad("name", f"name {name!r} may use letters, digits, '.', '-' and '_' only")
    elif name in seen:
        bad("name", f"duplicate rule name (first defined at {seen[name]})")
    else:
        line = lines.get("name", header)
        seen[name] = f"{f.name}:{line}" if line else f.name

    tags = raw.get("tags")
    if tags is None:
        bad("tags", "missing tags (a list like tags = [\"ipo\"])")
    elif not isinstance(tags, list) or not tags or not all(isinstance(t, str) for t in tags):
        bad("tags", "tags must be a non-empty list of strings")
    else:
        for t in tags:
            if not _TAG.match(t):
                bad("tags", f"tag {t!r} must be lower-case letters, digits, '-' or '_'")

    weight = raw.get("weight", 1.0)
    if not _number(weight) or weight <= 0:
        bad("weight", f"weight must be a number above 0, not {weight!r}")

    source = raw.get("source", "")
    if not isinstance(source, str):
        bad("source", "source must be a string")

    query = raw.get("query")
    node = None
    if query is None:
        bad("query", "missing query")
    elif not isinstance(query, str):
        bad("query", "query must be a string")
    else:
        try:
            node = parse_query(query, aliases)
        except QueryError as exc:
            col = _query_column(f, lines.get("query"), query, exc.column)
            what = exc.message
            if col is None and exc.column is not None:
                what += f" (column {exc.column} of the query)"
            bad("query", what, col)

    if len(problems.items) > before or node is None:
        return None
    assert isinstance(name, str) and isinstance(tags, list)
    return Rule(
        name=name,
        tags=tuple(dict.fromkeys(tags)),
        query=query if isinstance(query, str) else "",
        weight=float(weight),
        node=node,
        source=source if isinstance(source, str) else "",
        file=f.name,
        line=lines.get("name", header),
    )


def _query_column(f: _File, line: int | None, query: str, column: int | None) -> int | None:
    """File column of a position in a query, when the query sits whole on its line."""
    if line is None or column is None:
        return None
    text = f.text.splitlines()[line - 1]
    at = text.find(query)
    if at < 0 or "\n" in query:
        return None
    return at + column
