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
from pathlib import Path
from typing import Any, TypeVar

import click

from core.errors import ConfigError, MonitorError, RuleError, StorageError
from core.redact import RedactingFilter, Redactor
from monitor.app import App, app_of, utcnow
from monitor.app import table as _table
from monitor.cli_rules import rules as rules_group

F = TypeVar("F", bound=Callable[..., Any])

# `poll` and `run --once`: 1 when every feed failed, 3 when the database could
# not be written (what was fetched is not stored; nothing stored was lost).
EXIT_ALL_FAILED = 1
EXIT_NOT_STORED = 3

# The process's one redactor: the log filter and the error lines below share
# it, and the App adds the config's secrets to it when it loads the config.
# (Logging is process-wide state already; this is its companion.)
REDACT = Redactor()


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
    )
    # On the handlers, not a logger: records from every library pass them
    # (urllib3 logs each request path with its query at DEBUG).
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter(REDACT))
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
    ctx.obj = App(config_path, redactor=REDACT)


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
    try:
        summary = poll_once(app.config, feed_urls=list(feed_urls), due_only=due_only, now=utcnow(), progress=True)
    except StorageError as exc:  # could not even record which feeds to poll
        click.echo(REDACT(f"monitor: NOT STORED: {exc}"), err=True)
        ctx.exit(EXIT_NOT_STORED)
    click.echo(summary.line())
    for f in summary.feeds:
        if f.error:
            click.echo(REDACT(f"  failed: {f.name} ({f.url}): {f.error}"), err=True)
    ctx.exit(_poll_exit_code(summary))


def _poll_exit_code(summary: Any) -> int:
    if summary.store_error:
        return EXIT_NOT_STORED
    if summary.feeds and summary.failed == len(summary.feeds):
        return EXIT_ALL_FAILED
    return 0


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
    app.config  # validated now, and its secrets handed to the log filter before any round logs
    if once:
        result = Runner(app.config_path).run_once()
        click.echo(result.summary.line())
        for day in result.digests:
            click.echo(f"digest built for {day}")
        if result.summary.store_error:  # cron must hear of a full disk
            ctx.exit(EXIT_NOT_STORED)
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
        click.echo(REDACT(f"monitor: digest written but not delivered: {result.delivery_error}"), err=True)
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
    with app.reader() as store:
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
    with app.reader() as store:
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
    # What status prints is what gets pasted into bug reports: feed URLs lose
    # their user info and query values here (`feeds list` shows them whole).
    def echo(text: str) -> None:
        click.echo(REDACT(text))

    with app.reader() as store:
        rows = feed_status(store)
        extras = status_extras(app.config, store, now=utcnow())
    if as_json:
        echo(json.dumps(rows, indent=2))
        return
    if not rows:
        echo("No feeds. Add one with `monitor feeds add URL` or list them in monitor.toml.")
    else:
        echo(_table(
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
                echo(f"  {r['name']}: {r['last_error']}")
            elif r["last_warning"]:
                echo(f"  {r['name']}: stored with a warning: {r['last_warning']}")
    for line in extras:
        echo(line)


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
    with app_of(ctx).reader() as store:
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


main.add_command(rules_group)


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
            click.echo(REDACT(f"monitor: {line}"), err=True)
        sys.exit(2)
    except MonitorError as exc:
        click.echo(REDACT(f"monitor: {exc}"), err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
