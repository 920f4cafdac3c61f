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

import math
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
from rules.query import QueryError, Term, alias_term, all_terms, parse_query

_TOP_KEYS = {"threshold", "title_weight", "aliases", "rules", "extends", "extend_aliases", "drop"}
_RULE_KEYS = {"name", "tags", "query", "weight", "source", "title_weight", "override"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TAG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_ALIAS = re.compile(r"^[A-Za-z0-9_-]+$")
_SHIPPED = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_KEY_LINE = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*=""")
_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")

# Ranges of the numbers in a rule file. NaN and infinities are refused (TOML
# allows `nan` and `inf`): a NaN threshold would flag nothing, silently.
MAX_THRESHOLD = 10_000.0
MAX_WEIGHT = 1_000.0  # |weight|: a negative weight is a penalty rule
MAX_TITLE_WEIGHT = 100.0
# Limits that keep loading a set in seconds, not minutes (a generated or
# corrupted file): each is one clear error. 10,000 rules load in about 1 s.
MAX_RULES = 20_000
MAX_ALIAS_ENTRIES = 1_000  # per alias, after the aliases it refers to are expanded
MAX_QUERY_TERMS = 5_000  # per query, after its aliases are expanded
MAX_FILE_BYTES = 8_000_000


def default_rule_files() -> list[Path]:
    """The shipped default rule set (package data), used when the config names none."""
    return [shipped_rule_file("partnership")]


def shipped_rule_file(name: str) -> Path:
    """The path of a shipped rule set by name (`extends = "partnership"`)."""
    return Path(str(resources.files("rules").joinpath(f"{name}.toml")))


@dataclass
class _Layout:
    """Where keys are written in a rule file (1-based lines), found by scanning its text."""

    top: dict[str, int] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    extend_aliases: dict[str, int] = field(default_factory=dict)
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
            section = {"aliases": out.aliases, "extend_aliases": out.extend_aliases}.get(name, {})
            if name in ("aliases", "extend_aliases"):
                out.top.setdefault(name, number)
            continue
        m = _KEY_LINE.match(line)
        if m:
            key = m.group(1).strip("\"'")
            section.setdefault(key, number)
    return out


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.warnings: list[str] = []

    def add(
        self, file: str, line: int | None, what: str, *, col: int | None = None, rule: str | None = None,
        warning: bool = False,
    ) -> None:
        where = file
        if line is not None:
            where += f":{line}"
            if col is not None:
                where += f":{col}"
        text = f"{where}: " + (f"rule {rule}: " if rule else "") + ("warning: " if warning else "") + what
        (self.warnings if warning else self.items).append(text)


@dataclass
class _File:
    name: str
    text: str
    data: dict[str, Any]
    layout: _Layout
    path: Path


def _read(path: Path, problems: _Problems) -> _File | None:
    name = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            problems.add(name, None, f"rule file is {size:,} bytes; the limit is {MAX_FILE_BYTES:,}")
            return None
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
    return _File(name, text, data, _layout(text), path)


def _suggest(word: str, options: Iterable[str]) -> str:
    close = get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _with_extended(files: list[_File], problems: _Problems) -> list[_File]:
    """The files with each `extends = ...` base read and put before the file that names it.

    A base already in the list (the shipped file named in the config too) is
    not loaded twice. A base may not extend another: one level keeps the
    origin of every rule plain.
    """
    out: list[_File] = []
    seen = {f.path.resolve() for f in files}
    for f in files:
        base_name = f.data.get("extends")
        if base_name is not None:
            line = f.layout.top.get("extends")
            if not isinstance(base_name, str) or not base_name:
                problems.add(f.name, line, f"extends must name a shipped rule set (\"partnership\") or a .toml file, not {base_name!r}")
            else:
                path = shipped_rule_file(base_name) if _SHIPPED.match(base_name) else f.path.parent / base_name
                if _SHIPPED.match(base_name) and not path.exists():
                    problems.add(f.name, line, f"extends: no shipped rule set {base_name!r} (shipped: partnership)")
                elif path.resolve() not in seen:
                    base = _read(path, problems)
                    if base is not None:
                        if "extends" in base.data:
                            problems.add(base.name, base.layout.top.get("extends"),
                                         f"a rule set extended by {f.name} cannot itself extend another")
                        seen.add(path.resolve())
                        out.append(base)
        out.append(f)
    return out


def load_rules(paths: Iterable[str | PathLike[str]]) -> RuleSet:
    """Read, check and compile rule files into one `RuleSet`.

    Raises `RuleError` listing every problem in every file; nothing is
    compiled unless all of them are valid. Words that look like mistyped
    operators do not stop loading: they are in the set's ``warnings``.
    """
    problems = _Problems()
    path_list = [Path(p) for p in paths]
    if not path_list:
        raise RuleError(["no rule files given"])
    given = [f for f in (_read(p, problems) for p in path_list) if f is not None]
    files = _with_extended(given, problems)

    threshold = DEFAULT_THRESHOLD
    title_weight = DEFAULT_TITLE_WEIGHT
    for f in files:
        for key in f.data:
            if key not in _TOP_KEYS:
                problems.add(f.name, f.layout.top.get(key), f"unknown key {key!r}{_suggest(key, _TOP_KEYS)}")
        if "threshold" in f.data:
            value = f.data["threshold"]
            if not _number(value) or not 0 < value <= MAX_THRESHOLD:
                problems.add(f.name, f.layout.top.get("threshold"),
                             f"threshold must be a number above 0 and at most {MAX_THRESHOLD:g}, not {value!r}")
            else:
                threshold = float(value)
        if "title_weight" in f.data:
            value = f.data["title_weight"]
            if not _number(value) or not 1 <= value <= MAX_TITLE_WEIGHT:
                problems.add(f.name, f.layout.top.get("title_weight"),
                             f"title_weight must be a number from 1 to {MAX_TITLE_WEIGHT:g}, not {value!r}")
            else:
                title_weight = float(value)

    alias_entries, alias_terms = _aliases(files, problems)

    rules: dict[str, Rule] = {}
    seen: dict[str, str] = {}
    for f in files:
        _drop(f, rules, problems)
        raw_rules = f.data.get("rules", [])
        if not isinstance(raw_rules, list):
            problems.add(f.name, f.layout.top.get("rules"), "rules must be an array of tables: [[rules]]")
            continue
        for index, raw in enumerate(raw_rules):
            rule = _check_rule(f, index, raw, alias_terms, seen, rules, problems)
            if rule is not None:
                rules[rule.name] = rule
        if len(rules) > MAX_RULES:
            problems.add(f.name, None, f"more than {MAX_RULES:,} rules; split the watch list or raise the limit")
            break
    if files and not rules and not problems.items:
        problems.add(", ".join(f.name for f in files), None, "no rules defined: add at least one [[rules]] entry")
    if problems.items:
        raise RuleError(problems.items)
    return RuleSet(
        list(rules.values()), threshold=threshold, title_weight=title_weight, aliases=alias_entries,
        files=[f.name for f in files], warnings=problems.warnings,
    )


def _alias_table(f: _File, key: str, problems: _Problems) -> dict[str, Any]:
    table = f.data.get(key, {})
    if isinstance(table, dict):
        return table
    problems.add(f.name, f.layout.top.get(key), f"{key} must be a table: [{key}] name = [\"term\", ...]")
    return {}


def _strings(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(e, str) for e in value)


def _aliases(files: list[_File], problems: _Problems) -> tuple[dict[str, list[str]], dict[str, list[Term]]]:
    """Every file's aliases, with `[extend_aliases]` entries added and `@name` entries expanded.

    An entry ``@other`` stands for every entry of alias ``other``; an alias
    that comes back to itself through such entries is refused.
    """
    raw: dict[str, list[str]] = {}
    where: dict[str, tuple[str, int | None]] = {}
    for f in files:
        for name, entries in _alias_table(f, "aliases", problems).items():
            line = f.layout.aliases.get(name)
            if not _ALIAS.match(name):
                problems.add(f.name, line, f"alias {name!r}: names use letters, digits, '-' and '_'")
                continue
            if name in where:
                first = where[name]
                problems.add(f.name, line, f"alias @{name} is already defined at {first[0]}:{first[1]}; "
                             "add entries to it under [extend_aliases]")
                continue
            where[name] = (f.name, line)
            if not _strings(entries):
                problems.add(f.name, line, f"alias @{name} must be a non-empty list of strings")
                continue
            raw[name] = list(entries)
    for f in files:
        for name, entries in _alias_table(f, "extend_aliases", problems).items():
            line = f.layout.extend_aliases.get(name)
            if name not in raw:
                if name not in where:  # a broken alias is reported already
                    problems.add(f.name, line, f"extend_aliases: no alias @{name} to extend{_suggest(name, raw)}")
                continue
            if not _strings(entries):
                problems.add(f.name, line, f"extend_aliases: @{name} must be given a non-empty list of strings")
                continue
            raw[name] += [e for e in entries if e not in raw[name]]
            where.setdefault(name, (f.name, line))

    terms: dict[str, list[Term]] = {}
    expanded: dict[str, list[str]] = {}
    failed: set[str] = set()

    def expand(name: str, path: tuple[str, ...]) -> list[str] | None:
        if name in expanded:
            return expanded[name]
        if name in failed:
            return None
        file, line = where[name]
        out: list[str] = []
        for entry in raw[name]:
            if not entry.startswith("@"):
                out.append(entry)
                continue
            ref = entry[1:]
            if ref == name or ref in path:
                cycle = " -> ".join(f"@{n}" for n in (*path, name, ref)[list((*path, name)).index(ref):])
                problems.add(file, line, f"alias @{name} refers to itself: {cycle}")
                failed.add(name)
                return None
            if ref not in raw:
                problems.add(file, line, f"alias @{name}: unknown alias {entry}{_suggest(ref, raw)}")
                failed.add(name)
                return None
            inner = expand(ref, (*path, name))
            if inner is None:
                failed.add(name)
                return None
            out += inner
        out = list(dict.fromkeys(out))
        if len(out) > MAX_ALIAS_ENTRIES:
            problems.add(file, line, f"alias @{name} has {len(out):,} entries; the limit is {MAX_ALIAS_ENTRIES:,}")
            failed.add(name)
            return None
        expanded[name] = out
        return out

    for name in raw:
        entries = expand(name, ())
        if entries is None:
            # Known but broken (reported above): rules using it are not told it is unknown.
            terms[name] = [alias_term("broken")]
            continue
        file, line = where[name]
        ok: list[Term] = []
        for entry in entries:
            try:
                ok.append(alias_term(entry))
            except QueryError as exc:
                problems.add(file, line, f"alias @{name}: {exc.message}")
        terms[name] = ok
    return expanded, terms


def _drop(f: _File, rules: dict[str, Rule], problems: _Problems) -> None:
    """`drop = ["rule", ...]`: remove rules that earlier files (the extended set) define."""
    if "drop" not in f.data:
        return
    names = f.data["drop"]
    line = f.layout.top.get("drop")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        problems.add(f.name, line, "drop must be a list of rule names")
        return
    for name in names:
        if name in rules:
            del rules[name]
        else:
            problems.add(f.name, line, f"drop: no rule {name!r} in the files before this one{_suggest(name, rules)}")


def _check_rule(
    f: _File,
    index: int,
    raw: Any,
    aliases: Mapping[str, list[Term]],
    seen: dict[str, str],
    earlier: Mapping[str, Rule],
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
    override = raw.get("override", False)
    base: Rule | None = None
    if not isinstance(override, bool):
        bad("override", "override must be true or false")
    if not isinstance(name, str) or not name:
        bad("name", "missing name")
    elif not _NAME.match(name):
        bad("name", f"name {name!r} may use letters, digits, '.', '-' and '_' only")
    elif override is True:
        base = earlier.get(name)
        if base is None or seen.get(name, "").startswith(f"{f.name}:"):
            bad("name", f"override = true, but no rule {name!r} in the files before this one"
                f"{_suggest(name, earlier)}")
        line = lines.get("name", header)
        seen[name] = f"{f.name}:{line}" if line else f.name
    elif name in seen:
        hint = "; add override = true to replace it" if not seen[name].startswith(f"{f.name}:") else ""
        bad("name", f"duplicate rule name (first defined at {seen[name]}){hint}")
    else:
        line = lines.get("name", header)
        seen[name] = f"{f.name}:{line}" if line else f.name

    weight = raw.get("weight", base.weight if base else 1.0)
    if not _number(weight) or weight == 0 or abs(weight) > MAX_WEIGHT:
        bad("weight", f"weight must be a number from -{MAX_WEIGHT:g} to {MAX_WEIGHT:g} other than 0 "
            f"(below 0 for a penalty rule), not {weight!r}")
        weight = 1.0
    penalty = weight < 0

    tags = raw.get("tags", list(base.tags) if base else None)
    if tags is None and penalty:
        tags = []
    if tags is None:
        bad("tags", "missing tags (a list like tags = [\"ipo\"])")
    elif not isinstance(tags, list) or not all(isinstance(t, str) for t in tags) or (not tags and not penalty):
        bad("tags", "tags must be a non-empty list of strings")
    else:
        for t in tags:
            if not _TAG.match(t):
                bad("tags", f"tag {t!r} must be lower-case letters, digits, '-' or '_'")

    rule_title_weight = raw.get("title_weight", base.title_weight if base else None)
    if rule_title_weight is not None and (
        not _number(rule_title_weight) or not 1 <= rule_title_weight <= MAX_TITLE_WEIGHT
    ):
        bad("title_weight", f"title_weight must be a number from 1 to {MAX_TITLE_WEIGHT:g}, not {rule_title_weight!r}")

    source = raw.get("source", base.source if base else "")
    if not isinstance(source, str):
        bad("source", "source must be a string")

    query = raw.get("query")
    node = base.node if base is not None and query is None else None
    if query is None and base is not None:
        query = base.query
    elif query is None:
        bad("query", "missing query")
    elif not isinstance(query, str):
        bad("query", "query must be a string")
    else:
        warnings: list[tuple[str, int]] = []
        try:
            node = parse_query(query, aliases, warnings)
            count = len(all_terms(node))
            if count > MAX_QUERY_TERMS:
                node = None
                bad("query", f"query has {count:,} terms once its aliases are expanded; the limit is {MAX_QUERY_TERMS:,}")
        except QueryError as exc:
            col = _query_column(f, lines.get("query"), query, exc.column)
            what = exc.message
            if col is None and exc.column is not None:
                what += f" (column {exc.column} of the query)"
            bad("query", what, col)
        for what, column in warnings:
            col = _query_column(f, lines.get("query"), query, column)
            if col is None:
                what += f" (column {column} of the query)"
            problems.add(f.name, lines.get("query", header), what, col=col, rule=label, warning=True)

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
        title_weight=float(rule_title_weight) if rule_title_weight is not None else None,
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
