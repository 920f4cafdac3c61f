"""The `monitor` command line.

Each command opens what it needs, calls one library function, and turns the
project's expected errors (MonitorError) into one clear line on stderr and a
non-zero exit code. No pipeline logic lives here.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from core.errors import ConfigError, MonitorError, RuleError, StorageError
from core.redact import RedactingFilter, Redactor
from monitor.app import App, app_of, utcnow
from monitor.app import table as _table
from monitor.cli_rules import rules as rules_group
from monitor.digest.select import day_trends, digest_day_for, stories_of_day

if TYPE_CHECKING:
    from monitor.pipeline import FeedReport

# The use cases that pull in the fetcher, the pipeline or SMTP/HTTP delivery
# (monitor.service, monitor.digest.job, monitor.status) are imported inside
# their commands: at the top they made `monitor --help` and every read-only
# command take 1.6-2.2 s instead of 0.33-0.76 s (3 runs each, this 2-core
# machine, 2026-12-02). The digest selection above costs about 0.17 s.

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
    bar = _progress_bar if sys.stderr.isatty() else None
    try:
        if app.config.queue is not None:  # [queue] broker: the workers poll, this waits for their reports
            from monitor.queue.dispatch import poll_via_queue

            summary = poll_via_queue(app.config, feed_urls=list(feed_urls), due_only=due_only, now=utcnow(),
                                     progress=bar)
        else:
            summary = poll_once(app.config, feed_urls=list(feed_urls), due_only=due_only, now=utcnow(),
                                progress=bar)
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


@contextmanager
def _progress_bar(total: int) -> Iterator[Callable[[FeedReport], None]]:
    with click.progressbar(length=total, label="Polling", file=sys.stderr) as bar:
        yield lambda _report: bar.update(1)


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
    if not once and app.config.web.enabled:
        from monitor.web.server import serve_in_thread

        serve_in_thread(app.config, config_path=app.config_path)  # a daemon thread: it ends with the scheduler
    if once:
        result = Runner(app.config_path).run_once()
        click.echo(result.summary.line())
        for day in result.digests:
            click.echo(f"digest built for {day}")
        if result.summary.store_error:  # cron must hear of a full disk
            ctx.exit(EXIT_NOT_STORED)
        return
    ctx.exit(run_forever(app.config_path))


@main.command()
@click.option("--concurrency", "-c", type=click.IntRange(1, 256), default=None,
              help="Worker processes (default: two per core: a task mostly waits on the network).")
@click.option("--threads", "-t", type=click.IntRange(1, 256), default=None,
              help="Run tasks in this many threads of one process instead (start one such worker per core).")
@click.pass_context
def worker(ctx: click.Context, concurrency: int | None, threads: int | None) -> None:
    """Start a Celery worker that polls the feeds `monitor run` or `monitor poll` enqueue ([queue] broker).

    Each task polls one feed end to end and writes it to the database; run
    one worker per machine, as many machines as the feeds need.
    """
    app = app_of(ctx)
    if app.config.queue is None:
        raise MonitorError("no [queue] broker configured: add [queue] broker = \"redis://127.0.0.1:6379/0\"")
    from monitor.pipeline import default_processes
    from monitor.queue.tasks import run_worker

    # Two per core: on this 2-core machine 4 processes polled the 200-feed loopback round
    # 2.1x faster than 2 (bench/workers.py), the fetches' waiting overlapping.
    if threads and concurrency:
        raise click.UsageError("--threads and --concurrency are two ways to run tasks at once: give one")
    ctx.exit(run_worker(app.config, concurrency or 2 * max(1, default_processes()), threads or 0))


# ---------------------------------------------------------------- digest


@main.command()
@click.option(
    "--date", "day", metavar="YYYY-MM-DD",
    help="The day (default: the scheduled digest's day, [digest] day: yesterday unless set to today).",
)
@click.option(
    "--format", "formats", default="md,html,json", show_default=True, help="Comma-separated: md, html, json."
)
@click.option("--deliver/--no-deliver", default=None, help="Send by e-mail/webhook (default: if configured and not yet sent).")
@click.pass_context
def digest(ctx: click.Context, day: str | None, formats: str, deliver: bool | None) -> None:
    """Build the digest of one day's flagged articles and print the file paths."""
    from monitor.digest.job import make_digest

    app = app_of(ctx)
    wanted = tuple(f.strip() for f in formats.split(",") if f.strip())
    bad = [f for f in wanted if f not in ("md", "html", "json")]
    if bad or not wanted:
        raise click.BadParameter(f"unknown format {', '.join(bad) or '(none)'}; use md, html, json", param_hint="--format")
    target = _day_option(app, day)
    result = make_digest(app.config, target, now=utcnow(), formats=wanted, deliver=deliver)
    for path in [*result.paths, app.config.digest_dir / "index.html", app.config.digest_dir / "feed.xml"]:
        click.echo(str(path))
    if result.items == 0:
        click.echo(f"No flagged articles on {target.isoformat()}.", err=True)
    if result.delivery_skipped:
        click.echo(f"monitor: digest written but not delivered: {result.delivery_skipped}", err=True)
        ctx.exit(1)
    if result.delivery_error:
        click.echo(REDACT(f"monitor: digest written but not delivered: {result.delivery_error}"), err=True)
        ctx.exit(1)


# --------------------------------------------------------- stories, trends


def _day_option(app: App, day: str | None) -> date:
    """--date, or the scheduled digest's day: `digest` and `stories` show the same day by default."""
    if day is None:
        return digest_day_for(app.config, utcnow())
    try:
        return date.fromisoformat(day)
    except ValueError:
        raise click.BadParameter(f"{day!r} is not a date like 2026-11-23", param_hint="--date") from None


@main.command()
@click.option(
    "--date", "day", metavar="YYYY-MM-DD",
    help="The day (default: the scheduled digest's day, as for `monitor digest`).",
)
@click.option("--all", "include_all", is_flag=True, help="Also stories with no flagged article that day.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of stories with their members.")
@click.pass_context
def stories(ctx: click.Context, day: str | None, include_all: bool, as_json: bool) -> None:
    """List a day's stories: one entry per story, with every outlet that carried it, ranked as the digest ranks."""
    app = app_of(ctx)
    target = _day_option(app, day)
    with app.reader() as store:
        found = stories_of_day(app.config, store, target, include_unflagged=include_all)
    if as_json:
        click.echo(json.dumps([s.to_json() for s in found], indent=2, ensure_ascii=False))
        return
    if not found:
        click.echo(f"No stories with flagged articles on {target.isoformat()}.")
        return
    click.echo(f"Stories of {target.isoformat()}, best first:")
    for s in found:
        dev = " [developing]" if s.developing else ""
        click.echo(f"[{s.id}] {s.title}{dev}  (score {s.score:g}; {', '.join(s.tags) or 'no tags'})")
        click.echo(f"    {s.url}")
        others = [m for m in s.members if m.url != s.url]
        if others:
            click.echo("    also covered by: " + ", ".join(m.feed for m in others[:5])
                       + (f" (+{len(others) - 5})" if len(others) > 5 else ""))


@main.command()
@click.option("--days", default=30, show_default=True, help="How many days to show, ending on --date.")
@click.option("--date", "day", metavar="YYYY-MM-DD", help="The last day shown (default: the scheduled digest's day).")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@click.pass_context
def trends(ctx: click.Context, days: int, day: str | None, as_json: bool) -> None:
    """Daily counts of flagged articles and stories per tag, with sparklines and spikes."""
    app = app_of(ctx)
    if days < 1:
        raise click.BadParameter("must be at least 1", param_hint="--days")
    target = _day_option(app, day)
    with app.reader() as store:
        articles, stories_table = day_trends(app.config, store, target, days=days)
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
    from monitor.status import feed_status, status_extras

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
@click.option("--offset", default=0, show_default=True, help="Skip this many results first (the next page).")
@click.option("--all", "show_all", is_flag=True, help="Every result (ignores --limit).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as a JSON list (plain-text snippets).")
@click.pass_context
def search(ctx: click.Context, query: str, limit: int, offset: int, show_all: bool, as_json: bool) -> None:
    """Full-text search over stored titles and text, best match first.

    QUERY uses SQLite FTS5 syntax: words (all must occur), "a phrase",
    OR, NOT, prefix*. A `*` before a result marks a flagged article.
    """
    if limit < 1 and not show_all:
        raise click.BadParameter("must be at least 1", param_hint="--limit")
    if offset < 0:
        raise click.BadParameter("must be 0 or more", param_hint="--offset")
    with app_of(ctx).reader() as store:
        total = store.search_total(query)
        results = store.search(
            query, limit=None if show_all else limit, offset=offset, marks=("", "") if as_json else ("[", "]")
        )
    if as_json:
        # A list, as before; how many there are in all goes to stderr when this is not all of them.
        click.echo(json.dumps(results, indent=2, ensure_ascii=False))
        if offset or len(results) < total:
            click.echo(f"{len(results)} of {total} results from {offset + 1}; --offset N or --all for more.", err=True)
        return
    if not results:
        more = f" past result {offset}" if offset and total else ""
        click.echo(f"No stored article matches {query!r}{more}." + (f" ({total} in all.)" if total else ""))
        return
    first, last = offset + 1, offset + len(results)
    click.echo(f"Results {first}-{last} of {total} for {query!r}; * = flagged, [words] = what matched.")
    for r in results:
        flag = "*" if r["flagged"] else " "
        click.echo(f"{flag} [{r['id']}] {r['title']}  ({r['feed']}, {_short_time(r['published'])})")
        click.echo(f"    {r['url']}")
        if r["snippet"]:
            click.echo(f"    {r['snippet']}")
    if last < total:
        click.echo(f"{total - last} more: --offset {last}, or --all.")


# ----------------------------------------------------------------- feeds


@main.group()
def feeds() -> None:
    """Add, list, remove, reset, import and export feeds."""


@feeds.command("add")
@click.argument("url")
@click.option("--name", help="Display name.")
@click.option("--interval", help="Poll interval, e.g. 15m (default: [schedule] interval).")
@click.option("--full-text", is_flag=True, help="Fetch each new entry's page and keep its main text.")
@click.option("--category", help="Folder to file it under (written to OPML export).")
@click.option("--no-discover", is_flag=True, help="Add the URL as given, without fetching it to find the feed.")
@click.pass_context
def feeds_add(
    ctx: click.Context,
    url: str,
    name: str | None,
    interval: str | None,
    full_text: bool,
    category: str | None,
    no_discover: bool,
) -> None:
    """Add a feed by URL; a site's page is searched for its feed."""
    from monitor.config import parse_duration

    if not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="URL")
    seconds = None
    if interval:
        try:
            seconds = parse_duration(interval)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--interval") from None
    app = app_of(ctx)
    if not no_discover:
        url = _discover(app, url)
    with app.store() as store:
        feed, created = store.add_feed(url, now=utcnow(), name=name, interval=seconds)
        if full_text or category:
            store.set_feed_options([(feed.url, full_text or bool(feed.full_text), category or feed.category)])
    extras = ", full text" if full_text else ""
    extras += f", in {category}" if category else ""
    click.echo(("Added " if created else "Already monitored: ") + f"{feed.display_name} ({feed.url}){extras}")


def _discover(app: App, url: str) -> str:
    """The feed URL to add for `url`; says which one was chosen when it is not `url` itself."""
    from monitor.discover import CheckFailed, discover_feed
    from monitor.fetch import Fetcher
    from monitor.service import fetch_settings

    with Fetcher(fetch_settings(app.config)) as fetcher:
        try:
            found = discover_feed(fetcher, url, now=utcnow())
        except CheckFailed as exc:
            click.echo(f"monitor: could not check the URL ({exc}); adding it as given", err=True)
            return url
    if found.url != url:
        click.echo(f"{url} is not a feed; chose {found.url}, found through {found.how}.")
    return found.url


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def feeds_list(ctx: click.Context, as_json: bool) -> None:
    """List the monitored feeds."""
    with app_of(ctx).store() as store:
        rows = store.list_feeds()
    if as_json:
        click.echo(json.dumps([
            {"url": f.url, "name": f.display_name, "source": f.source, "interval": f.interval,
             "full_text": bool(f.full_text), "category": f.category}
            for f in rows
        ], indent=2))
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
            feed, created = store.add_feed(f.url, now=utcnow(), name=f.title, source="opml")
            if f.category and f.category != feed.category:
                store.set_feed_options([(feed.url, bool(feed.full_text), f.category)])
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
        [OpmlFeed(f.url, f.name or f.title, f.category) for f in rows], title="partnership-monitor feeds", now=utcnow()
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


# ------------------------------------------------------------- web app


@main.command()
@click.option("--host", default=None, help="Address to listen on (default: [web] host, 127.0.0.1).")
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="Port (default: [web] port, 8470).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the web app: read the digest, label items, measure and tune the rules.

    Binds to loopback by default; another address needs [web] password.
    """
    from monitor.web.server import serve as serve_app

    app = app_of(ctx)
    serve_app(app.config, host or app.config.web.host, port or app.config.web.port, config_path=app.config_path)


@main.group()
def labels() -> None:
    """Export and import the labels analysts gave stored articles."""


@labels.command("export")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def labels_export(ctx: click.Context, path: Path) -> None:
    """Write the stored labels to PATH in the `rules eval` JSON-lines format."""
    from monitor.web.labels import export_labels

    with app_of(ctx).reader() as store:
        n = export_labels(store, path)
    click.echo(f"wrote {n} labels to {path}")


@labels.command("import")
@click.argument("path", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.pass_context
def labels_import(ctx: click.Context, path: Path) -> None:
    """Store the labels of a `rules eval` file for the stored articles its URLs name."""
    from monitor.web.labels import import_labels

    app = app_of(ctx)
    with app.store() as store:
        n, skipped = import_labels(store, path, user=app.config.web.user, now=utcnow())
    for line in skipped:
        click.echo(line, err=True)
    click.echo(f"imported {n} labels" + (f", skipped {len(skipped)}" if skipped else ""))


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
