"""The `monitor` command line.

Each command opens what it needs, calls one library function, and turns the
project's expected errors (MonitorError) into one clear line on stderr and a
non-zero exit code. No pipeline logic lives here.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import click

from monitor.config import Config, load_config
from monitor.model import ConfigError, MonitorError, RuleError

F = TypeVar("F", bound=Callable[..., Any])


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class App:
    """What commands share: the configuration (loaded lazily, once) and ways to open the rest."""

    def __init__(self, config_path: str | None):
        self.config_path = config_path

    @cached_property
    def config(self) -> Config:
        return load_config(self.config_path)

    def store(self) -> Any:
        """Open the database and bring the configured feeds into it."""
        from monitor.service import open_store

        return open_store(self.config, now=utcnow())

    def ruleset(self, files: list[Path] | None = None) -> Any:
        from rules import load_rules

        return load_rules(files or self.config.rule_files)


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
    )
    # Library chatter (connection pools, scheduler internals) stays out of the operator's log.
    for noisy in ("urllib3", "apscheduler.executors", "apscheduler.scheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not verbose else logging.DEBUG)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="MONITOR_CONFIG",
    help="Config file (default: ./monitor.toml, else built-in defaults). Also $MONITOR_CONFIG.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log debugging detail.")
@click.version_option(package_name="partnership-monitor")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """Watch news feeds for how the Microsoft-OpenAI partnership develops.

    Polls feeds, tags articles with keyword rules, stores them in SQLite and
    builds daily digests of what was flagged.
    """
    setup_logging(verbose)
    ctx.obj = App(config_path)


def app_of(ctx: click.Context) -> App:
    obj = ctx.find_object(App)
    assert obj is not None
    return obj


# ------------------------------------------------------------------ poll


@main.command()
@click.option("--feed", "feed_urls", multiple=True, metavar="URL", help="Poll only this feed (repeatable).")
@click.option("--all", "poll_all", is_flag=True, help="Poll every active feed, due or not (default when --feed is not given).")
@click.option("--due", "due_only", is_flag=True, help="Poll only the feeds that are due.")
@click.pass_context
def poll(ctx: click.Context, feed_urls: tuple[str, ...], poll_all: bool, due_only: bool) -> None:
    """Fetch feeds once, now, and store and tag what they hold."""
    from monitor.service import poll_once

    app = app_of(ctx)
    summary = poll_once(app.config, feed_urls=list(feed_urls), due_only=due_only, now=utcnow(), progress=True)
    click.echo(summary.line())
    for f in summary.feeds:
        if f.error:
            click.echo(f"  failed: {f.name} ({f.url}): {f.error}", err=True)
    if summary.feeds and summary.failed == len(summary.feeds):
        ctx.exit(1)


# ------------------------------------------------------------------- run


@main.command("run")
@click.option("--once", is_flag=True, help="Poll the due feeds, build any digest that is due, and exit (for cron).")
@click.pass_context
def run_command(ctx: click.Context, once: bool) -> None:
    """Run the scheduler in the foreground: poll, digest, housekeeping.

    Polls due feeds every minute, builds the daily digest at [digest] time,
    and prunes old unflagged articles daily. Rule files and the config are
    re-read when they change. Stop with Ctrl-C or SIGTERM.
    """
    from monitor.scheduler import Runner, run_forever

    app = app_of(ctx)
    if once:
        result = Runner(app.config_path).run_once()
        click.echo(result.summary.line())
        for day in result.digests:
            click.echo(f"digest built for {day}")
        return
    ctx.exit(run_forever(app.config_path))


# ---------------------------------------------------------------- digest


@main.command()
@click.option("--date", "day", metavar="YYYY-MM-DD", help="The day (default: the scheduled digest's day).")
@click.option(
    "--format", "formats", default="md,html,json", show_default=True, help="Comma-separated: md, html, json."
)
@click.option("--deliver/--no-deliver", default=None, help="Send by e-mail/webhook (default: if configured and not yet sent).")
@click.pass_context
def digest(ctx: click.Context, day: str | None, formats: str, deliver: bool | None) -> None:
    """Build the digest of one day's flagged articles and print the file paths."""
    from datetime import date as date_cls

    from monitor.service import digest_day_for, make_digest

    app = app_of(ctx)
    wanted = tuple(f.strip() for f in formats.split(",") if f.strip())
    bad = [f for f in wanted if f not in ("md", "html", "json")]
    if bad or not wanted:
        raise click.BadParameter(f"unknown format {', '.join(bad) or '(none)'}; use md, html, json", param_hint="--format")
    if day is None:
        target = digest_day_for(app.config, utcnow())
    else:
        try:
            target = date_cls.fromisoformat(day)
        except ValueError:
            raise click.BadParameter(f"{day!r} is not a date like 2026-11-23", param_hint="--date") from None
    result = make_digest(app.config, target, now=utcnow(), formats=wanted, deliver=deliver)
    for path in [*result.paths, app.config.digest_dir / "index.html", app.config.digest_dir / "feed.xml"]:
        click.echo(str(path))
    if result.items == 0:
        click.echo(f"No flagged articles on {target.isoformat()}.", err=True)
    if result.delivery_error:
        click.echo(f"monitor: digest written but not delivered: {result.delivery_error}", err=True)
        ctx.exit(1)


# --------------------------------------------------------- stories, trends


def _day_option(app: App, day: str | None) -> Any:
    from datetime import date as date_cls

    if day is None:
        return utcnow().astimezone(app.config.digest.zone).date()
    try:
        return date_cls.fromisoformat(day)
    except ValueError:
        raise click.BadParameter(f"{day!r} is not a date like 2026-11-23", param_hint="--date") from None


@main.command()
@click.option("--date", "day", metavar="YYYY-MM-DD", help="The day (default: today in the digest time zone).")
@click.option("--all", "include_all", is_flag=True, help="Also stories with no flagged article that day.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of stories with their members.")
@click.pass_context
def stories(ctx: click.Context, day: str | None, include_all: bool, as_json: bool) -> None:
    """List a day's stories: one entry per story, with every outlet that carried it."""
    from monitor.service import stories_of_day

    app = app_of(ctx)
    target = _day_option(app, day)
    with app.store() as store:
        found = stories_of_day(app.config, store, target, include_unflagged=include_all)
    if as_json:
        click.echo(json.dumps(found, indent=2, ensure_ascii=False))
        return
    if not found:
        click.echo(f"No stories with flagged articles on {target.isoformat()}.")
        return
    for s in found:
        dev = " [developing]" if s["developing"] else ""
        click.echo(f"[{s['id']}] {s['title']}{dev}  (score {s['score']:g}; {', '.join(s['tags']) or 'no tags'})")
        click.echo(f"    {s['url']}")
        others = [m for m in s["members"] if m["url"] != s["url"]]
        if others:
            click.echo("    also covered by: " + ", ".join(m["feed"] for m in others[:5])
                       + (f" (+{len(others) - 5})" if len(others) > 5 else ""))


@main.command()
@click.option("--days", default=30, show_default=True, help="How many days to show, ending today.")
@click.option("--date", "day", metavar="YYYY-MM-DD", help="The last day shown (default: today).")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@click.pass_context
def trends(ctx: click.Context, days: int, day: str | None, as_json: bool) -> None:
    """Daily counts of flagged articles and stories per tag, with sparklines and spikes."""
    from monitor.service import trends as trend_tables

    app = app_of(ctx)
    if days < 1:
        raise click.BadParameter("must be at least 1", param_hint="--days")
    target = _day_option(app, day)
    with app.store() as store:
        articles, stories_table = trend_tables(app.config, store, target, days=days)
    if as_json:
        click.echo(json.dumps({"articles": articles.to_json(), "stories": stories_table.to_json()}, indent=2))
        return
    story_today = {r.tag: r.today for r in stories_table.rows}
    click.echo(f"Flagged articles per tag, {articles.days[0].isoformat()} to {articles.days[-1].isoformat()}:")
    click.echo(_table(
        ["tag", "trend", "total", "today", "stories today", "median", ""],
        [[r.tag, r.sparkline, str(r.total), str(r.today), str(story_today.get(r.tag, 0)), f"{r.median:g}",
          "SPIKE" if r.spike else ""] for r in articles.rows],
    ))


# ---------------------------------------------------------------- status


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per feed.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show each feed's health and counts, and the last digest."""
    from monitor.service import feed_status, status_extras

    app = app_of(ctx)
    with app.store() as store:
        rows = feed_status(store)
        extras = status_extras(app.config, store, now=utcnow())
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No feeds. Add one with `monitor feeds add URL` or list them in monitor.toml.")
    else:
        click.echo(_table(
            ["feed", "status", "errors", "articles", "last fetched", "next due"],
            [
                [
                    _clip(r["name"], 40),
                    r["last_status"] + (f" ({r['disabled']})" if r["disabled"] and r["disabled"] != r["last_status"] else ""),
                    str(r["error_count"]),
                    str(r["articles"]),
                    _short_time(r["last_fetched"]),
                    _short_time(r["next_due"]),
                ]
                for r in rows
            ],
        ))
        for r in rows:
            if r["last_error"]:
                click.echo(f"  {r['name']}: {r['last_error']}")
            elif r["last_warning"]:
                click.echo(f"  {r['name']}: stored with a warning: {r['last_warning']}")
    for line in extras:
        click.echo(line)


# ---------------------------------------------------------------- search


@main.command()
@click.argument("query")
@click.option("--limit", default=20, show_default=True, help="At most this many results.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_context
def search(ctx: click.Context, query: str, limit: int, as_json: bool) -> None:
    """Full-text search over stored titles and text.

    QUERY uses SQLite FTS5 syntax: words (all must occur), "a phrase",
    OR, NOT, prefix*.
    """
    with app_of(ctx).store() as store:
        results = store.search(query, limit=limit)
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    if not results:
        click.echo(f"No stored article matches {query!r}.")
        return
    for r in results:
        flag = "*" if r["flagged"] else " "
        click.echo(f"{flag} [{r['id']}] {r['title']}  ({r['feed']}, {_short_time(r['published'])})")
        click.echo(f"    {r['url']}")
        if r["snippet"]:
            click.echo(f"    {r['snippet']}")


# ----------------------------------------------------------------- feeds


@main.group()
def feeds() -> None:
    """Add, list, remove, reset, import and export feeds."""


@feeds.command("add")
@click.argument("url")
@click.option("--name", help="Display name.")
@click.option("--interval", help="Poll interval, e.g. 15m (default: [schedule] interval).")
@click.pass_context
def feeds_add(ctx: click.Context, url: str, name: str | None, interval: str | None) -> None:
    """Add a feed by URL."""
    from monitor.config import parse_duration

    if not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="URL")
    seconds = None
    if interval:
        try:
            seconds = parse_duration(interval)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--interval") from None
    with app_of(ctx).store() as store:
        feed, created = store.add_feed(url, now=utcnow(), name=name, interval=seconds)
    click.echo(("Added " if created else "Already monitored: ") + f"{feed.display_name} ({feed.url})")


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def feeds_list(ctx: click.Context, as_json: bool) -> None:
    """List the monitored feeds."""
    with app_of(ctx).store() as store:
        rows = store.list_feeds()
    if as_json:
        click.echo(json.dumps([{"url": f.url, "name": f.display_name, "source": f.source, "interval": f.interval} for f in rows], indent=2))
        return
    for f in rows:
        click.echo(f"{f.url}\t{f.display_name}\t{f.source}")


@feeds.command("remove")
@click.argument("url")
@click.pass_context
def feeds_remove(ctx: click.Context, url: str) -> None:
    """Stop monitoring a feed (its stored articles are kept)."""
    with app_of(ctx).store() as store:
        feed = store.get_feed(url)
        if feed.source == "config":
            raise MonitorError(f"{url} is listed in the configuration file; remove it there")
        store.remove_feed(url)
    click.echo(f"Removed {feed.display_name} ({feed.url}); its articles are kept.")


@feeds.command("reset")
@click.argument("url")
@click.pass_context
def feeds_reset(ctx: click.Context, url: str) -> None:
    """Clear a feed's errors, backoff and pause; poll it on the next round."""
    with app_of(ctx).store() as store:
        feed = store.reset_feed(url, now=utcnow())
    click.echo(f"Reset {feed.display_name} ({feed.url}); it is due now.")


@feeds.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def feeds_import(ctx: click.Context, path: Path) -> None:
    """Add every feed listed in an OPML file."""
    from monitor.opml import read_opml

    listed = read_opml(path.read_bytes(), str(path))
    added = 0
    with app_of(ctx).store() as store:
        for f in listed:
            if not f.url.startswith(("http://", "https://")):
                click.echo(f"{path}: skipped {f.url!r}: not an http(s) URL", err=True)
                continue
            _, created = store.add_feed(f.url, now=utcnow(), name=f.title, source="opml")
            added += int(created)
    click.echo(f"Imported {path}: {added} new feeds, {len(listed) - added} already monitored or skipped.")


@feeds.command("export")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def feeds_export(ctx: click.Context, path: Path | None) -> None:
    """Write the monitored feeds as OPML 2.0 (to PATH, or stdout)."""
    from monitor.opml import OpmlFeed, write_opml

    with app_of(ctx).store() as store:
        rows = store.list_feeds()
    text = write_opml(
        [OpmlFeed(f.url, f.name or f.title) for f in rows], title="partnership-monitor feeds", now=utcnow()
    )
    if path is None:
        click.echo(text, nl=False)
    else:
        path.write_text(text, encoding="utf-8")
        click.echo(f"Wrote {len(rows)} feeds to {path}")


# --------------------------------------------------------------- helpers


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _short_time(value: str | None) -> str:
    if not value:
        return "-"
    return value.replace("T", " ")[:16]


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


# ------------------------------------------------- rules on stored articles


@click.command("explain")
@click.argument("article")
@click.option("--current", is_flag=True, help="Also evaluate the article with the rules in force now.")
@click.pass_context
def rules_explain(ctx: click.Context, article: str, current: bool) -> None:
    """Show why a stored article (id or URL) was tagged: rules, terms, spans, score."""
    from rules import format_tagging

    from monitor.service import stored_fields, stored_tagging

    app = app_of(ctx)
    with app.store() as store:
        row = store.article(article)
        changes = store.tag_changes(row["id"])
    marks = ("\x1b[1m", "\x1b[0m") if sys.stdout.isatty() else ("«", "»")
    fields = stored_fields(row)
    click.echo(f"[{row['id']}] {row['title']}")
    click.echo(f"{row['link']}  ({row['feed_name']}, published {row['published']})")
    click.echo(f"tagged with rules version {row['rules_version'] or '?'}")
    click.echo(format_tagging(stored_tagging(row), fields, open_mark=marks[0], close_mark=marks[1]))
    for c in changes:
        click.echo(f"  {c['at']}: tag {c['tag']} {c['change']} (rules {c['rules_version'] or '?'})")
    if current:
        ruleset = app.ruleset()
        click.echo(f"\nwith the rules in force now (version {ruleset.version}):")
        click.echo(format_tagging(ruleset.evaluate(fields), fields, threshold=ruleset.threshold, rules=ruleset,
                                  open_mark=marks[0], close_mark=marks[1]))


@click.command("backtest")
@click.option("--rules", "rule_files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Candidate rule file(s) (default: the rules in force).")
@click.option("--since", default=None, help="Only articles first seen within this long, e.g. 30d (default: all).")
@click.option("--apply", is_flag=True, help="Re-tag the articles for real and record every tag added or removed.")
@click.option("--examples", default=5, show_default=True, help="Examples to show per kind of change.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def rules_backtest(
    ctx: click.Context, rule_files: tuple[Path, ...], since: str | None, apply: bool, examples: int, as_json: bool
) -> None:
    """Re-evaluate stored articles with the current or a candidate rule set and show the difference."""
    from datetime import timedelta

    from monitor.config import parse_duration
    from monitor.service import backtest

    app = app_of(ctx)
    ruleset = app.ruleset(list(rule_files) or None)
    now = utcnow()
    start = None
    if since:
        try:
            start = now - timedelta(seconds=parse_duration(since))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--since") from None
    result = backtest(app.config, ruleset, since=start, now=now, apply=apply)
    r = result.report
    if as_json:
        out = r.to_dict()
        out["rules_version"] = ruleset.version
        out["applied"] = result.applied
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"{r.articles} stored articles re-evaluated with rules version {ruleset.version}")
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


def _register_subcommands() -> None:
    from monitor.cli_rules import rules as rules_group

    rules_group.add_command(rules_explain)
    rules_group.add_command(rules_backtest)
    main.add_command(rules_group)


_register_subcommands()


def run() -> None:
    """Entry point: the project's errors become one clear line, never a traceback."""
    try:
        code = main.main(standalone_mode=False, prog_name="monitor")
        if isinstance(code, int) and code:
            sys.exit(code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (ConfigError, RuleError) as exc:
        for line in exc.problems:
            click.echo(f"monitor: {line}", err=True)
        sys.exit(2)
    except MonitorError as exc:
        click.echo(f"monitor: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
