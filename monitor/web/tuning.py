"""Rules against stored articles and labels: backtests, tries, and suggested edits.

Pure over what it is given (a store to read, rule files, labels) except for
`apply_edit`, which rewrites the local rule file with tomlkit (comments and
layout kept) and only after the edited file passes the rules loader.

Suggested edits, each measured on every stored label (precision/recall
before and after) and on every stored article (how many it newly flags and
unflags; only the edited rules are re-evaluated, see `edit_flag_changes`):

- weight: a false negative that scored but stayed below the threshold
  raises the weight of the rule that gave it most, just enough;
  a false positive lowers the weight of the rule that flagged it most,
  just enough to unflag it;
- exclusion: a false positive gets ``NOT title:WORD`` added to the rule
  that flagged it, WORD a distinctive title word no true positive's title
  has;
- alias term: a false negative whose rule matched everything but one alias
  gets a distinctive word of its own added to that alias.

Only edits that raise F1 on the labels are proposed.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit

from core.errors import MonitorError, RuleError
from core.types import Tagging
from rules import compare, load_rules
from rules.measure import Counts, EvalReport, LabeledExample, evaluate_labels
from rules.suggest import STOPWORDS, suggest_terms

_WORD = re.compile(r"[A-Za-z][A-Za-z\-]{3,}")


# ------------------------------------------------------------- backtests


@dataclass
class StoredSet:
    """The stored articles' rule fields and taggings, read once per request."""

    fields: dict[int, dict[str, str]] = field(default_factory=dict)
    tagging: dict[int, Tagging] = field(default_factory=dict)
    titles: dict[int, str] = field(default_factory=dict)


def stored_set(store: Any) -> StoredSet:
    from monitor.service import stored_fields, stored_tagging

    out = StoredSet()
    for row in store.iter_articles():
        out.fields[row["id"]] = stored_fields(row)
        out.tagging[row["id"]] = stored_tagging(row)
        out.titles[row["id"]] = row["title"]
    return out


def backtest(stored: StoredSet, ruleset: Any) -> Any:
    """rules.BacktestReport of `ruleset` against how the stored articles are tagged now."""
    after = {i: ruleset.evaluate(f) for i, f in stored.fields.items()}
    return compare(stored.tagging, after)


def changed_rules(before: Any, after: Any) -> list[str]:
    """Names of the rules of `after` that score differently from `before` (query, weight or an alias they use)."""
    changed_aliases = {a for a in set(before.aliases) | set(after.aliases) if before.aliases.get(a) != after.aliases.get(a)}
    out = []
    for r in after.rules:
        old = before.rule(r.name)
        uses = set(re.findall(r"@([A-Za-z0-9_.-]+)", r.query))
        if old is None or (old.query, old.weight, old.tags) != (r.query, r.weight, r.tags) or uses & changed_aliases:
            out.append(r.name)
    return out


def edit_flag_changes(stored: StoredSet, before: Any, after: Any, *, new_term: str | None = None,
                      narrowing: bool = False) -> tuple[int, int]:
    """(newly flagged, no longer flagged) among the stored articles when `before` becomes `after`.

    Only the changed rules are evaluated: an article's new score is its
    stored score minus what the changed rules gave it before plus what they
    give it now, so the count is the edit's own effect on the stored
    tagging. Only the articles the edit can change are looked at: with
    `narrowing` (a weight change, an exclusion) those a changed rule matched;
    with `new_term` (an alias entry added) also those whose fields contain
    it. Without either, every article.
    """
    from rules.engine import RuleSet

    names = changed_rules(before, after)
    if not names:
        return 0, 0

    def subset(rs: Any) -> Any:
        rules = [r for r in rs.rules if r.name in names]
        return RuleSet(rules, threshold=rs.threshold, title_weight=rs.title_weight, aliases=rs.aliases) if rules else None

    old, new = subset(before), subset(after)
    wanted = set(names)
    needle = new_term.lstrip("=").lower() if new_term else None
    newly = gone = 0
    for article_id, fields in stored.fields.items():
        t = stored.tagging[article_id]
        if narrowing or needle:
            matched = any(m.rule in wanted for m in t.matches)
            if not matched and not (needle and any(needle in (v or "").lower() for v in fields.values())):
                continue  # nothing the edit changes can reach this article
        score = t.score - (old.evaluate(fields).score if old else 0.0) + (new.evaluate(fields).score if new else 0.0)
        flagged = round(score, 6) >= after.threshold
        if flagged and not t.flagged:
            newly += 1
        elif t.flagged and not flagged:
            gone += 1
    return newly, gone


def local_rule_file(config: Any) -> Path | None:
    """The rule file an edit goes to: the last configured one (None when the shipped defaults are in force)."""
    if config.rule_files_configured is None:
        return None
    files = list(config.rule_files_configured)
    return files[-1] if files else None


def load_with(config: Any, replaced: Path, text: str) -> Any:
    """Load the rules in force with `replaced` swapped for `text`; raises RuleError naming the file."""
    with tempfile.TemporaryDirectory(prefix="monitor-rules-") as tmp:
        candidate = Path(tmp) / replaced.name
        candidate.write_text(text, encoding="utf-8")
        files = [candidate if Path(p) == replaced else Path(p) for p in config.rule_files]
        if candidate not in files:
            files.append(candidate)
        try:
            return load_rules(files)
        except RuleError as exc:
            raise RuleError([p.replace(str(candidate), str(replaced)) for p in exc.problems]) from None


def with_query(config: Any, query: str, tags: Sequence[str], threshold: float) -> Any:
    """The rules in force plus one rule made of `query`, weighted to flag on its own."""
    doc = tomlkit.document()
    rule = tomlkit.table()
    rule["name"] = "tried-query"
    rule["tags"] = list(tags) or ["tried"]
    rule["query"] = query
    rule["weight"] = float(threshold)
    aot = tomlkit.aot()
    aot.append(rule)
    doc["rules"] = aot
    with tempfile.TemporaryDirectory(prefix="monitor-try-") as tmp:
        path = Path(tmp) / "tried.toml"
        path.write_text(tomlkit.dumps(doc), encoding="utf-8")
        try:
            return load_rules(list(config.rule_files) + [path])
        except RuleError as exc:
            raise RuleError([p.replace(str(path), "query") for p in exc.problems]) from None


# ------------------------------------------------------------ suggestions


@dataclass
class Edit:
    """One change to one rule file, as data: applied to a tomlkit document by `apply_to`."""

    kind: str  # weight | exclusion | alias-term
    rule: str  # the rule (or alias) changed
    value: Any  # new weight, excluded word, or added term
    why: str

    @property
    def id(self) -> str:
        return hashlib.sha1(f"{self.kind}|{self.rule}|{self.value}".encode()).hexdigest()[:12]

    def describe(self) -> str:
        if self.kind == "weight":
            return f"set the weight of rule {self.rule} to {self.value:g}"
        if self.kind == "exclusion":
            return f"add NOT title:{self.value} to rule {self.rule}"
        return f"add {self.value!r} to alias @{self.rule}"

    def apply_to(self, doc: Any) -> None:
        if self.kind == "alias-term":
            aliases = doc.get("aliases")
            if aliases is None or self.rule not in aliases:
                raise MonitorError(f"alias {self.rule} is not in the local rule file")
            aliases[self.rule].append(self.value)
            return
        for rule in doc.get("rules", []):
            if rule.get("name") == self.rule:
                if self.kind == "weight":
                    rule["weight"] = float(self.value)
                else:
                    rule["query"] = f"({rule['query']}) NOT title:{self.value}"
                return
        raise MonitorError(f"rule {self.rule} is not in the local rule file")


@dataclass
class Suggestion:
    edit: Edit
    before: Counts
    after: Counts
    newly_flagged: int
    no_longer_flagged: int
    fixes: list[str]  # example ids the edit puts right


def edited_text(text: str, edit: Edit) -> str:
    doc = tomlkit.parse(text)
    edit.apply_to(doc)
    return tomlkit.dumps(doc)


def _local_names(text: str) -> tuple[set[str], set[str]]:
    doc = tomlkit.parse(text)
    rules = {str(r.get("name")) for r in doc.get("rules", [])}
    aliases = set(doc.get("aliases", {}).keys())
    return rules, aliases


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text) if w.lower() not in STOPWORDS]


def _distinctive(ex: LabeledExample, background: Sequence[str] | None, top: int = 4) -> list[str]:
    """The example's most distinctive words and phrases (TF-IDF against the stored articles or a built-in sample)."""
    return [s.term for s in suggest_terms(f"{ex.title}. {ex.text}", background or None, top=top)]


def candidate_edits(ruleset: Any, report: EvalReport, examples: Sequence[LabeledExample],
                    rules_here: set[str], aliases_here: set[str], background: Sequence[str] | None = None) -> list[Edit]:
    weights = {r.name: r.weight for r in ruleset.rules}
    queries = {r.name: r.query for r in ruleset.rules}
    threshold = ruleset.threshold
    tp_titles = {w.lower() for ex in examples if ex.relevant for w in _words(ex.title)}
    edits: list[Edit] = []
    for miss in report.false_negatives:
        t = miss.tagging
        contrib = _contributions(t, ruleset)
        if contrib and t.score > 0:
            rule, part = max(contrib.items(), key=lambda kv: kv[1])
            if rule in rules_here and part > 0:
                factor = part / weights[rule]  # 1, or title_weight when it matched in the title
                need = (threshold - (t.score - part)) / factor
                edits.append(Edit("weight", rule, round(need + 0.05, 2), f"{miss.example.label} scored {t.score:g}"))
        # A rule that needs one more alias to match: give the alias a word of this example.
        for r in ruleset.rules:
            used = re.findall(r"@([A-Za-z0-9_.-]+)", r.query)
            missing = [a for a in used if a in aliases_here and not _alias_hits(ruleset, a, miss.example)]
            if len(set(missing)) == 1 and r.name in queries:
                known = {e.lstrip("=").lower() for entries in ruleset.aliases.values() for e in entries}
                for word in _distinctive(miss.example, background, top=8):
                    if word.lower() not in known:
                        edits.append(Edit("alias-term", missing[0], word, f"{miss.example.label} lacks @{missing[0]}"))
    for miss in report.false_positives:
        t = miss.tagging
        contrib = _contributions(t, ruleset)
        if not contrib:
            continue
        rule, part = max(contrib.items(), key=lambda kv: kv[1])
        if rule not in rules_here:
            continue
        factor = part / weights[rule]
        target = (threshold - (t.score - part)) / factor - 0.05
        if target > 0:
            edits.append(Edit("weight", rule, round(target, 2), f"{miss.example.label} scored {t.score:g}"))
        for word in _words(miss.example.title):
            if word.lower() not in tp_titles and " " not in word:
                edits.append(Edit("exclusion", rule, word.lower(), f"{miss.example.label}: {word!r} is in no true positive's title"))
    seen: set[str] = set()
    unique = []
    for e in edits:
        if e.id not in seen:
            seen.add(e.id)
            unique.append(e)
    return unique


def _contributions(t: Tagging, ruleset: Any) -> dict[str, float]:
    weights = {r.name: r.weight for r in ruleset.rules}
    out: dict[str, float] = {}
    for m in t.matches:
        if m.rule in weights:
            w = weights[m.rule] * (ruleset.title_weight if m.field == "title" else 1.0)
            out[m.rule] = max(out.get(m.rule, 0.0), w)
    return out


def _alias_hits(ruleset: Any, alias: str, ex: LabeledExample) -> bool:
    text = f"{ex.title} {ex.text}".lower()
    for entry in ruleset.aliases.get(alias, []):
        e = entry.lstrip("=").lower()
        if re.search(r"(?<!\w)" + re.escape(e) + r"(?!\w)", text):
            return True
    return False


MIN_BACKGROUND = 100  # as `monitor rules suggest`: fewer stored articles say little about what is common


def suggestions(config: Any, ruleset: Any, examples: Sequence[LabeledExample], stored: StoredSet | None,
                *, limit: int = 8, on_error: Callable[[str], None] | None = None,
                background: Sequence[str] | None = None) -> list[Suggestion]:
    """Candidate edits that raise F1 on the labels, best first, each measured (see the module docstring)."""
    local = local_rule_file(config)
    if local is None or not examples:
        return []
    text = local.read_text(encoding="utf-8")
    rules_here, aliases_here = _local_names(text)
    base = evaluate_labels(ruleset, examples)
    measured: list[tuple[float, Suggestion, Any]] = []
    if background is not None and len(background) < MIN_BACKGROUND:
        background = None
    for edit in candidate_edits(ruleset, base, examples, rules_here, aliases_here, background)[:60]:
        try:
            new_rules = load_with(config, local, edited_text(text, edit))
        except (RuleError, MonitorError) as exc:
            if on_error:
                on_error(f"{edit.describe()}: {exc}")
            continue
        after = evaluate_labels(new_rules, examples)
        if after.overall.f1 <= base.overall.f1 + 1e-9:
            continue
        before_ids = {m.example.id for m in base.false_positives + base.false_negatives}
        after_ids = {m.example.id for m in after.false_positives + after.false_negatives}
        s = Suggestion(edit, base.overall, after.overall, 0, 0, sorted(before_ids - after_ids))
        measured.append((after.overall.f1, s, new_rules))
    # Best F1 first; among equals, the edit that changes the fewest stored articles, then the order
    # they were proposed in (most distinctive word first).
    order = {id(m[1]): i for i, m in enumerate(measured)}
    measured.sort(key=lambda x: -x[0])
    top = measured[: limit * 3]
    for _f1, s, new_rules in top:
        if stored is not None:
            e = s.edit
            s.newly_flagged, s.no_longer_flagged = edit_flag_changes(
                stored, ruleset, new_rules, new_term=e.value if e.kind == "alias-term" else None,
                narrowing=e.kind != "alias-term",
            )
    top.sort(key=lambda x: (-round(x[0], 9), x[1].newly_flagged + x[1].no_longer_flagged, order[id(x[1])]))
    out: list[Suggestion] = []
    per: dict[tuple[str, str], int] = {}
    for _f1, s, _r in top:
        key = (s.edit.kind, s.edit.rule)
        if per.get(key, 0) < 2:  # a few kinds of fix beat ten spellings of one
            per[key] = per.get(key, 0) + 1
            out.append(s)
    return out[:limit]


def apply_edit(config: Any, edit: Edit) -> Path:
    """Write `edit` into the local rule file, after the edited rules pass the loader. Returns the file."""
    local = local_rule_file(config)
    if local is None:
        raise MonitorError("the shipped rules are in force: run `monitor rules init` to get a local rule file to edit")
    text = local.read_text(encoding="utf-8")
    new = edited_text(text, edit)
    load_with(config, local, new)  # raises RuleError: nothing written
    tmp = local.with_name(f".{local.name}.{os.getpid()}.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, local)
    return local
