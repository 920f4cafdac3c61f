"""`monitor rules ...`: check, try, measure and start editing the keyword rules.

Each command loads what it needs, calls one function of the `rules` package
and prints the result; the project's errors (RuleError for a bad rule file,
MonitorError otherwise) are left to the root command, which turns them into
one clear line and an exit code. The commands that need stored articles
(`explain`, `backtest`) live with the store-aware CLI and reuse
`rules.format_tagging` and `rules.compare`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tomllib
from pathlib import Path
from typing import Any

import click

from core.errors import ConfigError, MonitorError
from monitor.app import app_of, utcnow
from monitor.app import table as _table
from monitor.config import find_config_path
from rules import (
    default_rule_files,
    evaluate_labels,
    format_tagging,
    load_rules,
    read_labels,
    suggest_terms,
)

RULES_FILE_NAME = "rules.toml"
CONFIG_FILE_NAME = "monitor.toml"


def _config(ctx: click.Context) -> Any:
    obj = ctx.obj
    if obj is None or not hasattr(obj, "config"):
        raise MonitorError("internal: the rules commands need the monitor root command's context")
    return obj.config


def _rule_files(ctx: click.Context, given: tuple[str, ...]) -> list[Path]:
    if given:
        return [Path(p) for p in given]
    return list(_config(ctx).rule_files)


def _load(ctx: click.Context, given: tuple[str, ...]) -> Any:
    """The rule set to use, its warnings (likely slips that still load) on stderr."""
    ruleset = load_rules(_rule_files(ctx, given))
    for warning in ruleset.warnings:
        click.echo(f"monitor: {warning}", err=True)
    return ruleset


def _marks(stream: Any = None) -> tuple[str, str]:
    """ANSI bold on a terminal (unless NO_COLOR), else guillemets that survive pipes and logs."""
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR") is None and hasattr(stream, "isatty") and stream.isatty():
        return "\x1b[1m", "\x1b[0m"
    return "«", "»"


@click.group()
def rules() -> None:
    """Check, try and measure the keyword rules."""


_RULES_OPTION_HELP = "Rule file to use instead of the configured ones (repeatable)."


@rules.command()
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(dir_okay=False), help=_RULES_OPTION_HELP)
@click.pass_context
def check(ctx: click.Context, files: tuple[str, ...], rule_paths: tuple[str, ...]) -> None:
    """Validate rule files (default: those in force) and list their rules and aliases.

    Every problem in every file is reported, with file, line and column;
    likely mistakes that still load (a lower-case `and`, `OpenAI/3`) are
    listed as warnings. Give the files with --rules, as for `test` and `eval`
    (a positional FILE still works but is deprecated).
    """
    if files:
        click.echo("monitor: warning: `rules check FILE` is deprecated; write `rules check --rules FILE`", err=True)
    ruleset = _load(ctx, rule_paths + files)
    click.echo(f"files: {', '.join(ruleset.files)}")
    click.echo(f"threshold {ruleset.threshold:g}, title weight {ruleset.title_weight:g}, version {ruleset.version}")
    if ruleset.aliases:
        click.echo("")
        click.echo(f"aliases ({len(ruleset.aliases)}):")
        for name, entries in ruleset.aliases.items():
            click.echo(f"  @{name} = {', '.join(entries)}")
    click.echo("")
    click.echo(f"rules ({len(ruleset.rules)}):")
    width = max(len(r.name) for r in ruleset.rules)
    for r in ruleset.rules:
        extra = f", title x{r.title_weight:g}" if r.title_weight is not None else ""
        tags = ", ".join(r.tags) if r.tags else "penalty"
        click.echo(f"  {r.name:<{width}}  {r.weight:>4g}  [{tags}{extra}]")
        click.echo(f"  {'':<{width}}        {r.query}")
    click.echo("")
    warned = f", {len(ruleset.warnings)} warnings" if ruleset.warnings else ""
    click.echo(f"OK: {len(ruleset.rules)} rules, {len(ruleset.aliases)} aliases{warned}")


@rules.command("test")
@click.option("--text", "text", help="The text to score.")
@click.option("--file", "file", type=click.Path(dir_okay=False, exists=True), help="Read the text from this file.")
@click.option("--title", default="", help="A title to score along with the text (titles may weigh more).")
@click.option("--url", default="", help="A URL to score along with the text (for url: terms).")
@click.option("--feed", default="", help="A feed name to score along with the text (for feed: terms).")
@click.option("--author", default="", help="An author to score along with the text (for author: terms).")
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(dir_okay=False),
              help="Rule file to use instead of the configured ones (repeatable).")
@click.pass_context
def test_text(
    ctx: click.Context, text: str | None, file: str | None, title: str, url: str, feed: str, author: str,
    rule_paths: tuple[str, ...],
) -> None:
    """Score one text (from --text, --file, or stdin) and show the matched terms.

    Prints the score against the threshold, whether it would be flagged, its
    tags, each matching rule with its terms, and the text with the matches
    marked (bold on a terminal, «» otherwise).
    """
    if text is not None and file is not None:
        raise click.UsageError("give --text or --file, not both")
    if text is None:
        if file is not None:
            text = Path(file).read_text(encoding="utf-8")
        else:
            text = sys.stdin.read()
    ruleset = _load(ctx, rule_paths)
    fields = {"title": title, "text": text, "url": url, "feed": feed, "author": author}
    tagging = ruleset.evaluate(fields)
    open_mark, close_mark = _marks()
    long_text = len(text) > 600
    click.echo(
        format_tagging(
            tagging,
            fields,
            threshold=ruleset.threshold,
            rules=ruleset,
            open_mark=open_mark,
            close_mark=close_mark,
            context=80 if long_text else None,
        ).rstrip()
    )


@rules.command("eval")
@click.argument("labels", required=False, type=click.Path(dir_okay=False))
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(dir_okay=False),
              help="Rule file to measure instead of the configured ones (repeatable).")
@click.option("--tag", "tags", multiple=True,
              help="List this tag's false positives and negatives, with the rule that fired or what was missing "
              "(repeatable; 'all' for every tag).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a report.")
@click.pass_context
def eval_labels(
    ctx: click.Context, labels: str | None, rule_paths: tuple[str, ...], tags: tuple[str, ...], as_json: bool
) -> None:
    """Measure the rules on labeled examples (JSON lines; without LABELS, the labels stored in the database).

    Each line: {"title", "text", "relevant": true|false, "id", "url",
    "topics": [tags]}. Prints precision, recall, F1 and the confusion counts,
    per tag where topics are given, then every false positive and false
    negative with the rule terms behind it.
    """
    ruleset = _load(ctx, rule_paths)
    examples: list[Any]
    if labels is None:
        from monitor.web.labels import evaluate_stored

        with app_of(ctx).reader() as store:
            report, stored = evaluate_stored(store, ruleset)
        examples = list(stored)
    else:
        examples = read_labels(labels)
        report = evaluate_labels(ruleset, examples)
    known = sorted(report.per_tag)
    chosen = known if "all" in tags else list(dict.fromkeys(tags))
    unknown = [t for t in chosen if t not in report.per_tag]
    if unknown:
        raise click.BadParameter(f"no labeled example carries topic {unknown[0]!r} (topics: {', '.join(known) or 'none'})",
                                 param_hint="--tag")
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        click.echo(f"{len(examples)} examples, rules version {ruleset.version}")
        click.echo(report.format_text())
        if chosen:
            click.echo(report.format_tags(chosen))


MIN_STORED_BACKGROUND = 100


@rules.command()
@click.argument("document", type=click.Path(dir_okay=False, exists=True))
@click.option("--top", default=25, show_default=True, type=click.IntRange(1, 500), help="How many terms to list.")
@click.option(
    "--background",
    type=click.Choice(["auto", "stored", "builtin"]),
    default="auto",
    show_default=True,
    help="What DOCUMENT is compared with: the stored articles, the built-in sample, or stored when there "
    f"are at least {MIN_STORED_BACKGROUND}.",
)
@click.option("--labels", type=click.Path(dir_okay=False, exists=True),
              help="Also propose whole rules, (ANCHOR) NEAR/15 term, each measured on these labeled examples.")
@click.option("--anchor", default=None,
              help="What proposed rules pair each term with, as a query (default: the top suggestion).")
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(dir_okay=False), help=_RULES_OPTION_HELP)
@click.pass_context
def suggest(
    ctx: click.Context, document: str, top: int, background: str, labels: str | None, anchor: str | None,
    rule_paths: tuple[str, ...],
) -> None:
    """List words and phrases distinctive of DOCUMENT, to derive rules from a new seed.

    score = count x ln(1 / share of background articles using the term): the
    background is the articles already stored (what your feeds usually say)
    or, before there are enough, a built-in list of how often ordinary news
    uses common words. count is how often DOCUMENT uses the term; the last
    column is the term as a query would write it (=ACRONYM is case-sensitive).
    """
    text = Path(document).read_text(encoding="utf-8")
    docs = _stored_background(ctx) if background != "builtin" else []
    if background == "stored" and len(docs) < MIN_STORED_BACKGROUND:
        raise click.UsageError(
            f"only {len(docs)} stored articles; --background stored needs at least {MIN_STORED_BACKGROUND}"
        )
    use_stored = len(docs) >= MIN_STORED_BACKGROUND
    suggestions = suggest_terms(text, docs if use_stored else None, top=top)
    if not suggestions:
        click.echo("no candidate terms found")
        return
    click.echo("score = count in the document x ln(1 / share of background articles using the term)")
    click.echo(f"{'score':>8}  {'count':>5}  query")
    for s in suggestions:
        click.echo(f"{s.score:>8.2f}  {s.count:>5}  {s.query}")
    click.echo(f"(compared with {len(docs)} stored articles)" if use_stored else "(compared with the built-in sample)")
    if labels is None:
        return
    from core.errors import QueryError
    from rules import propose_rules

    examples = read_labels(labels)
    ruleset = _load(ctx, rule_paths)
    anchor = anchor or suggestions[0].query
    try:
        proposals = propose_rules(ruleset, suggestions, examples, anchor=anchor)
    except QueryError as exc:
        raise click.BadParameter(str(exc), param_hint="--anchor") from None
    click.echo("")
    click.echo(f"proposed rules, each added alone to rules version {ruleset.version} (weight = threshold), "
               f"on {len(examples)} labeled examples:")
    click.echo("relevant newly flagged (+) / irrelevant newly flagged (-), best first")
    if not proposals:
        click.echo("  none of them changes what is flagged")
    for p in proposals:
        click.echo(f"  +{p.gained:<3} -{p.false:<3} {p.query}")


def _stored_background(ctx: click.Context, limit: int = 5000) -> list[str]:
    """Titles and texts of the most recent stored articles (none when there is no database yet)."""
    app = app_of(ctx)
    if app.config.storage_url is None and not app.config.storage_path.exists():
        return []
    with app.reader() as store:
        return store.recent_texts(limit)


@rules.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
@click.pass_context
def init(ctx: click.Context, path: str | None, force: bool) -> None:
    """Copy the default rules to PATH for editing and point the config at them.

    PATH defaults to rules.toml next to the config file (or in the current
    directory). The config's [rules] files entry is set to PATH; a
    monitor.toml is created in the current directory when there is none.
    """
    try:
        config_path: Path | None = _config(ctx).config_path
    except ConfigError:
        # The config may be broken precisely because of its rules entry,
        # which is what init rewrites: find the file without validating it.
        config_path = find_config_path(getattr(ctx.obj, "config_path", None))
    config_file = Path(config_path) if config_path is not None else Path.cwd() / CONFIG_FILE_NAME
    base = config_file.parent
    target = Path(path) if path else base / RULES_FILE_NAME
    if target.exists() and not force:
        raise MonitorError(f"{target} already exists; use --force to overwrite it")
    sources = default_rule_files()
    if len(sources) != 1:  # pragma: no cover - one default file ships today
        raise MonitorError("internal: init expects one default rule file")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sources[0], target)
    try:
        entry = os.path.relpath(target.resolve(), base.resolve())
    except ValueError:  # another drive on Windows
        entry = str(target.resolve())
    entry = entry.replace(os.sep, "/")
    old = config_file.read_text(encoding="utf-8") if config_file.exists() else ""
    config_file.write_text(set_rule_files(old, [entry]), encoding="utf-8")
    click.echo(f"wrote {target}")
    click.echo(f"{'updated' if old else 'created'} {config_file}: [rules] files = {json.dumps([entry])}")


_HEADER = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")
_FILES_KEY = re.compile(r"^\s*files\s*=")
_DOTTED_KEY = re.compile(r"^\s*rules\s*\.\s*files\s*=")


def set_rule_files(text: str, files: list[str]) -> str:
    """Return config text with ``[rules] files`` set to ``files``, the rest untouched.

    Works on the text so that the user's comments and layout survive; the
    result is parsed back and refused if it does not say what was meant.
    """
    value = "files = " + json.dumps(files)
    lines = text.splitlines()
    section: str | None = None
    header_at: int | None = None
    replaced = False
    i = 0
    while i < len(lines):
        line = lines[i]
        head = _HEADER.match(line)
        if head and not line.strip().startswith("[["):
            section = head.group(1).strip()
            if section == "rules":
                header_at = i
        elif line.strip().startswith("[["):
            section = None
        elif (section == "rules" and _FILES_KEY.match(line)) or (section is None and _DOTTED_KEY.match(line)):
            end = _value_end(lines, i)
            lines[i : end + 1] = [value if section == "rules" else "rules." + value]
            replaced = True
        i += 1
    if not replaced:
        if header_at is not None:
            lines.insert(header_at + 1, value)
        else:
            if lines and lines[-1].strip():
                lines.append("")
            lines += ["[rules]", value]
    result = "\n".join(lines) + "\n"
    try:
        data = tomllib.loads(result)
    except tomllib.TOMLDecodeError as exc:
        raise MonitorError(f"could not set [rules] files in the config: {exc}") from None
    if data.get("rules", {}).get("files") != files:
        raise MonitorError("could not set [rules] files in the config: edit it by hand")
    return result


def _value_end(lines: list[str], start: int) -> int:
    """Last line of a (possibly multi-line) array value starting at ``start``."""
    depth = 0
    for j in range(start, len(lines)):
        code = lines[j].split("#", 1)[0]
        depth += code.count("[") - code.count("]")
        if depth <= 0:
            return j
    return len(lines) - 1


# ------------------------------------------------- rules on stored articles


@rules.command("explain")
@click.argument("article")
@click.option("--current", is_flag=True, help="Also show in full how the rules in force now score the article.")
@click.pass_context
def rules_explain(ctx: click.Context, article: str, current: bool) -> None:
    """Show why a stored article (id or URL) was tagged: rules with their weights, terms, spans, score.

    When the rules in force now are another version than the one the article
    was tagged with, both scores are shown (and the current tagging in full
    with --current, or when they differ in verdict).
    """
    from core.errors import RuleError
    from monitor.service import stored_fields, stored_tagging
    from rules import format_tagging

    app = app_of(ctx)
    with app.reader() as store:
        row = store.article(article)
        changes = store.tag_changes(row["id"])
    marks = ("\x1b[1m", "\x1b[0m") if sys.stdout.isatty() else ("«", "»")
    fields = stored_fields(row)
    try:
        ruleset = app.ruleset()
    except RuleError as exc:  # the stored explanation is still worth showing
        ruleset = None
        click.echo(f"monitor: the rules in force do not load ({len(exc.problems)} problems; see `monitor rules check`)",
                   err=True)
    stored = stored_tagging(row)
    stored_version = row["rules_version"] or "?"
    click.echo(f"[{row['id']}] {row['title']}")
    click.echo(f"{row['link']}  ({row['feed_name']}, published {row['published']})")
    click.echo(f"tagged with rules version {stored_version}"
               + (" (weights shown are those of the rules in force now)" if ruleset is not None else ""))
    if row.get("full_text"):
        click.echo(f"full text: {len(row['full_text']):,} characters from the page, seen by the rules")
    elif row.get("full_text_error"):
        click.echo(f"full text: not retrieved ({row['full_text_error']}); the rules saw the feed's text only")
    click.echo(format_tagging(stored, fields, rules=ruleset, open_mark=marks[0], close_mark=marks[1]))
    for c in changes:
        click.echo(f"  {c['at']}: tag {c['tag']} {c['change']} (rules {c['rules_version'] or '?'})")
    if ruleset is None:
        return
    now = ruleset.evaluate(fields)
    if ruleset.version == stored_version and not current:
        click.echo(f"\nthe rules in force now are the same version ({ruleset.version})")
        return
    verdict = "FLAGGED" if now.flagged else "not flagged"
    if ruleset.version != stored_version:
        click.echo(f"\nscore with rules {stored_version} (stored): {stored.score:g}; "
                   f"with rules {ruleset.version} (in force now): {now.score:g}, {verdict}"
                   f" (threshold {ruleset.threshold:g})")
    if current or now.flagged != stored.flagged or now.score != stored.score:
        click.echo(f"\nwith the rules in force now (version {ruleset.version}):")
        click.echo(format_tagging(now, fields, threshold=ruleset.threshold, rules=ruleset,
                                  open_mark=marks[0], close_mark=marks[1]))


_SINCE = re.compile(r"^\s*(\d{1,6})\s*([hdwy])\s*$")
_SINCE_UNITS = {"h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def parse_since(text: str) -> int:
    """'30d', '4w', '1y', '12h' -> seconds (a year is 365 days)."""
    m = _SINCE.match(text)
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"{text!r} is not a period like 12h, 30d, 4w or 1y")
    return int(m.group(1)) * _SINCE_UNITS[m.group(2)]


@rules.command("backtest")
@click.option("--rules", "rule_files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Candidate rule file(s) (default: the rules in force).")
@click.option("--since", default=None,
              help="Only articles published within this long: 12h, 30d, 4w or 1y (default: all).")
@click.option("--apply", is_flag=True, help="Re-tag the articles for real and record every tag added or removed.")
@click.option("--examples", default=5, show_default=True, help="Examples to show per kind of change.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def rules_backtest(
    ctx: click.Context, rule_files: tuple[Path, ...], since: str | None, apply: bool, examples: int, as_json: bool
) -> None:
    """Re-evaluate stored articles with the current or a candidate rule set and show the difference."""
    from datetime import timedelta

    from monitor.service import backtest

    app = app_of(ctx)
    ruleset = app.ruleset(list(rule_files) or None)
    now = utcnow()
    start = None
    if since:
        try:
            start = now - timedelta(seconds=parse_since(since))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--since") from None
    result = backtest(app.config, ruleset, since=None, published_since=start, now=now, apply=apply)
    r = result.report
    if as_json:
        out = r.to_dict()
        out["rules_version"] = ruleset.version
        out["applied"] = result.applied
        click.echo(json.dumps(out, indent=2))
        return
    period = f" published in the last {since.strip()}" if since else ""
    click.echo(f"{r.articles} stored articles{period} re-evaluated with rules version {ruleset.version}")
    click.echo(f"flagged: {r.flagged_before} before, {r.flagged_after} after "
               f"(+{len(r.newly_flagged)} newly flagged, -{len(r.no_longer_flagged)} no longer flagged)")
    rows = r.tag_rows()
    if rows:
        click.echo(_table(["tag", "flagged before", "flagged after", "change"],
                          [[t, str(fb), str(fa), f"{fa - fb:+d}"] for t, _b, _a, fb, fa in rows]))
    for label, ids in (("newly flagged", r.newly_flagged), ("no longer flagged", r.no_longer_flagged)):
        if ids:
            click.echo(f"\n{label} ({len(ids)}), e.g.:")
            for article_id in ids[:examples]:
                title, url = result.titles[article_id]
                new = result.after[article_id]
                why = ", ".join(sorted({f"{m.rule}: {m.term}" for m in new.matches})) or "no rule matches now"
                click.echo(f"  [{article_id}] {title}\n      {url}\n      {why}")
    if not r.changed:
        click.echo("No article would change.")
    if apply:
        click.echo(f"Applied: {result.applied} articles re-tagged; tag changes recorded.")
    elif r.changed:
        click.echo("Nothing was changed; add --apply to re-tag for real.")
