"""Application operations shared by the CLI and the scheduler.

Builds the pipeline's parts from a Config and runs one operation (a poll
round, a status report). Holds no stage logic: the stages are wired in
pipeline.py only.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import click

from monitor.config import Config
from monitor.decide import Policy
from monitor.fetch import Fetcher, FetchSettings
from core.errors import MonitorError
from core.types import combined_text
from monitor.pipeline import FeedReport, ParserPool, Pipeline, PollSummary
from storage import Feed, Store, iso

log = logging.getLogger("monitor")


def fetch_settings(config: Config) -> FetchSettings:
    extra: dict[str, Any] = {}
    if config.user_agent:
        extra["user_agent"] = config.user_agent
    return FetchSettings(
        read_timeout=config.timeout,
        total_timeout=config.timeout,
        max_bytes=config.max_bytes,
        per_host=config.per_host,
        pool_size=config.concurrency,
        **extra,
    )


def policy(config: Config) -> Policy:
    return Policy(
        interval=config.interval, jitter=config.jitter, max_errors=config.max_errors, max_backoff=config.max_backoff
    )


def open_store(config: Config, *, now: datetime) -> Store:
    store = Store(config.storage_path)
    store.sync_configured_feeds(((f.url, f.name, f.interval) for f in config.feeds), now=now)
    return store


def select_feeds(store: Store, *, feed_urls: list[str], due_only: bool, now: datetime) -> list[Feed]:
    if feed_urls:
        return [store.get_feed(url) for url in feed_urls]
    if due_only:
        return store.feeds_due(now)
    return [f for f in store.list_feeds() if f.disabled is None]


def poll_once(
    config: Config,
    *,
    feed_urls: list[str] | None = None,
    due_only: bool = False,
    now: datetime,
    progress: bool = False,
    ruleset: Any = None,
    stop: threading.Event | None = None,
    parser_pool: ParserPool | None = None,
) -> PollSummary:
    """One poll round: the named feeds, the due ones, or every active feed."""
    from rules import load_rules

    ruleset = ruleset or load_rules(config.rule_files)
    with open_store(config, now=now) as store, Fetcher(fetch_settings(config)) as fetcher:
        feeds = select_feeds(store, feed_urls=feed_urls or [], due_only=due_only, now=now)
        pipeline = Pipeline(
            store,
            fetcher,
            ruleset,
            policy=policy(config),
            concurrency=config.concurrency,
            parser_pool=parser_pool,
            story_window=timedelta(days=config.story_window_days),
            stories=config.stories_enabled,
        )
        if progress and sys.stderr.isatty() and feeds:
            with click.progressbar(length=len(feeds), label="Polling", file=sys.stderr) as bar:
                return pipeline.poll(feeds, now=now, on_feed_done=lambda _r: bar.update(1), stop=stop)
        return pipeline.poll(feeds, now=now, on_feed_done=_log_feed, stop=stop)


def _log_feed(r: FeedReport) -> None:
    if r.status in ("ok", "not_modified"):
        log.info("%s: %s, %d new, %d updated, %d flagged", r.name, r.status.replace("_", " "), r.new, r.updated, r.flagged)


def feed_status(store: Store) -> list[dict[str, Any]]:
    """One dict per active feed, as `monitor status --json` prints it."""
    counts = store.feed_counts()
    warnings = store.last_warnings()
    return [
        {
            "url": f.url,
            "name": f.display_name,
            "source": f.source,
            "last_status": f.last_status,
            "http_status": f.http_status,
            "last_error": f.last_error,
            "last_warning": warnings.get(f.id),
            "error_count": f.error_count,
            "failing_since": f.failing_since,
            "disabled": f.disabled,
            "articles": counts.get(f.id, 0),
            "last_fetched": f.last_fetched,
            "last_ok": f.last_ok,
            "next_due": f.next_due,
        }
        for f in store.list_feeds()
    ]


def status_extras(config: Config, store: Store, *, now: datetime) -> list[str]:
    """Lines after the feed table: totals, the last digest, and the next scheduled runs."""
    c = store.counts()
    lines = [f"{c['articles']} articles stored, {c['flagged']} flagged. Database: {config.storage_path}"]
    last = store.last_digest()
    if last is None:
        lines.append("Last digest: none yet.")
    else:
        if last["delivered_at"]:
            delivery = f"delivered {last['delivered_at']}"
        elif last["delivery_error"]:
            delivery = f"NOT delivered: {last['delivery_error']} (retried on the next run)"
        elif delivery_configured(config):
            delivery = "not delivered yet"
        else:
            delivery = "no delivery configured"
        lines.append(f"Last digest: {last['day']}, {last['items']} items, {delivery}.")
    status = next_runs(config, store, now=now)
    lines.append(
        "Next runs: poll " + (status["poll"] or "when a feed is added")
        + f"; digest {status['digest']}; housekeeping {status['housekeeping']}."
    )
    return lines


def next_runs(config: Config, store: Store, *, now: datetime) -> dict[str, str | None]:
    """When each scheduled job next fires (as `monitor run` would schedule them), in the digest time zone."""
    tz = config.digest.zone
    due = store.next_due()
    hour, minute = (int(x) for x in config.digest.time.split(":"))

    def next_daily(h: int) -> str:
        local = now.astimezone(tz)
        at = local.replace(hour=h, minute=minute, second=0, microsecond=0)
        if at <= local:
            at = (local + timedelta(days=1)).replace(hour=h, minute=minute, second=0, microsecond=0)
        return at.strftime("%Y-%m-%d %H:%M %Z")

    return {
        "poll": (max(due, now).astimezone(tz).strftime("%Y-%m-%d %H:%M %Z") if due else None),
        "digest": next_daily(hour),
        "housekeeping": next_daily((hour + 12) % 24),
    }


# ---------------------------------------------------------------- digests


@dataclass
class DigestResult:
    day: date
    items: int
    paths: list[Path]
    delivery_error: str | None = None
    delivered: bool = False


def delivery_configured(config: Config) -> bool:
    return config.digest.smtp is not None or config.digest.webhook_url is not None


def digest_day_for(config: Config, now: datetime) -> date:
    """The day the scheduled digest covers at `now`: yesterday, or today so far."""
    today = now.astimezone(config.digest.zone).date()
    return today - timedelta(days=1) if config.digest.day == "yesterday" else today


def due_digest_days(config: Config, *, now: datetime) -> list[date]:
    """Digest days whose scheduled time has passed but that were never built.

    Looks back at most `[digest] catch_up_days` days, and never before
    monitoring began (the first feed added).
    """
    tz = config.digest.zone
    local = now.astimezone(tz)
    hour, minute = (int(x) for x in config.digest.time.split(":"))
    passed_today = (local.hour, local.minute) >= (hour, minute)
    latest = digest_day_for(config, now) - (timedelta(0) if passed_today else timedelta(days=1))
    with open_store(config, now=now) as store:
        began = store.first_activity()
        start = latest - timedelta(days=max(config.digest.catch_up_days, 1) - 1)
        if began is not None:
            start = max(start, began.astimezone(tz).date())
        days = []
        d = start
        while d <= latest:
            if store.digest(d.isoformat()) is None:
                days.append(d)
            d += timedelta(days=1)
    return days


def digest_items(rows: list[dict[str, Any]]) -> list[Any]:
    from monitor.digest import DigestItem

    return [
        DigestItem(
            id=r["id"],
            url=r["link"] or r["url"],
            title=r["title"],
            feed=r["feed_name"],
            published=datetime.fromisoformat(r["published"]),
            score=r["score"],
            tags=list(r["tags"]),
            tag_scores=dict(r["tag_scores"]),
            matches=list(r["matches"]),
            snippet_text=combined_text(r["summary_text"], r["content_text"]),
        )
        for r in rows
    ]


def day_items(config: Config, store: Store, day: date) -> list[Any]:
    """The day's digest items, one per story.

    For each story with flagged articles that day, the day's best one
    (highest score, then earliest) fronts it; the other outlets that carried
    it (grouped copies and word-for-word links alike) are listed under
    "also covered by"; its score gains the coverage bonus of
    monitor.stories.story_rank; a story first seen before the day is
    marked developing.
    """
    from monitor import digest as dg
    from monitor import stories as st

    tz = config.digest.zone
    start, end = dg.day_bounds(day, tz)
    rows = store.flagged_between(start, end)
    items = digest_items(rows)
    story_of = {r["id"]: r["story_id"] for r in rows}
    groups: dict[Any, list[Any]] = {}
    for item in items:
        sid = story_of.get(item.id)
        groups.setdefault(sid if sid is not None else ("article", item.id), []).append(item)
    members: dict[int, list[dict[str, Any]]] = {}
    for m in store.story_members(k for k in groups if isinstance(k, int)):
        members.setdefault(m["story_id"], []).append(m)
    out = []
    for key, group in groups.items():
        best = min(group, key=lambda i: (-i.score, i.published, i.id))
        story_rows = members.get(key, []) if isinstance(key, int) else []
        if story_rows:
            ms = [
                st.Member(r["id"], r["title"], r["url"], r["feed"], datetime.fromisoformat(r["published"]), r["score"])
                for r in story_rows
            ]
            seen_feeds = {best.feed}
            also = []
            for member in sorted(ms, key=lambda x: (x.published, x.article_id)):
                if member.feed not in seen_feeds:
                    seen_feeds.add(member.feed)
                    also.append(
                        dg.Source(feed=member.feed, url=member.url, title=member.title, published=member.published)
                    )
            best.also = also
            best.story_id = key
            best.score = round(best.score + st.COVERAGE_WEIGHT * math.log2(len(seen_feeds)), 3)
            first = datetime.fromisoformat(story_rows[0]["story_first_seen"])
            best.first_seen = first
            best.developing = st.developing(first.astimezone(tz).date(), day, members_on_day=len(group))
        out.append(best)
    return out


def trends(config: Config, store: Store, day: date, *, days: int = 14) -> tuple[Any, Any]:
    """Per-tag daily counts ending on `day`: (flagged articles table, stories table), spikes marked."""
    from monitor import digest as dg
    from monitor import trends as tr

    tz = config.digest.zone
    first_day = day - timedelta(days=max(days, config.trend_window) + 1)
    start, _ = dg.day_bounds(first_day, tz)
    _, end = dg.day_bounds(day, tz)
    articles: dict[date, dict[str, int]] = {}
    story_sets: dict[date, dict[str, set[int]]] = {}
    for published, story_id, tags in store.flagged_tags_between(start, end):
        local = datetime.fromisoformat(published).astimezone(tz).date()
        for t in tags:
            articles.setdefault(local, {}).setdefault(t, 0)
            articles[local][t] += 1
            if story_id is not None:
                story_sets.setdefault(local, {}).setdefault(t, set()).add(story_id)
    stories = {d: {t: len(ids) for t, ids in per.items()} for d, per in story_sets.items()}
    began = store.first_activity()
    since = began.astimezone(tz).date() if began else None
    kw: dict[str, Any] = dict(
        day=day, days=days, window=config.trend_window, factor=config.spike_factor,
        min_count=config.spike_min_count, since=since,
    )
    all_tags = set(config.digest.tag_order) | {t for per in articles.values() for t in per}
    return tr.trend_table(articles, tags=all_tags, **kw), tr.trend_table(stories, tags=all_tags, **kw)


def feed_health(store: Store) -> list[Any]:
    from monitor.digest import FeedHealth

    return [
        FeedHealth(
            name=f.display_name,
            url=f.url,
            failing_since=datetime.fromisoformat(f.failing_since) if f.failing_since else None,
            error_count=f.error_count,
            last_error=f.last_error or (f"disabled: {f.disabled}" if f.disabled else None),
        )
        for f in store.failing_feeds()
    ]


def make_digest(
    config: Config,
    day: date,
    *,
    now: datetime,
    formats: tuple[str, ...] = ("md", "html", "json"),
    deliver: bool | None = None,
) -> DigestResult:
    """Build, write and (when configured and not yet done) deliver one day's digest.

    Files are written whatever happens to delivery; a failed delivery is
    recorded and retried by the next run.
    """
    from monitor import digest as dg

    from monitor.trends import sparkline_svg

    tz = config.digest.zone
    with open_store(config, now=now) as store:
        article_trends, _ = trends(config, store, day)
        shown = [r for r in article_trends.rows if r.total or r.tag in config.digest.tag_order]
        order = {t: i for i, t in enumerate(config.digest.tag_order)}
        shown.sort(key=lambda r: (order.get(r.tag, len(order)), r.tag))
        d = dg.build_digest(
            day,
            tz,
            day_items(config, store, day),
            feed_health(store),
            tag_order=config.digest.tag_order,
            generated_at=now,
            max_items_per_tag=config.digest.max_items_per_tag,
            trends=[dg.TagTrend(r.tag, article_trends.days, r.counts, r.spike) for r in shown],
        )
        try:
            paths = dg.write_digest(
                d, config.digest_dir, formats, sparkline=lambda counts, spike: sparkline_svg(counts, spike=spike)
            )
            dg.write_index(config.digest_dir, generated_at=now)
        except OSError as exc:
            # A full disk or a read-only folder: one clear line; files already there are untouched
            # (each is written to a temporary file and renamed into place).
            where = exc.filename or config.digest_dir
            raise MonitorError(f"{where}: cannot write the digest: {exc.strerror or exc}") from None
        count = len(dg.digest_item_ids(d))
        store.record_digest(day.isoformat(), generated_at=now, items=count, paths=[str(p) for p in paths])
        result = DigestResult(day, count, paths)
        record = store.digest(day.isoformat())
        already = bool(record and record["delivered_at"])
        if deliver is None:
            deliver = delivery_configured(config) and not already
        if deliver and delivery_configured(config):
            result.delivery_error = _deliver(config, d)
            result.delivered = result.delivery_error is None
            store.record_delivery(day.isoformat(), at=now, error=result.delivery_error)
    return result


def _deliver(config: Config, d: Any) -> str | None:
    """Send a digest by every configured channel; None, or the failures as one line."""
    from monitor import digest as dg

    error = _send(
        config,
        subject=dg.email_subject(d),
        text=dg.render_markdown(d),
        html=dg.render_html(d),
        json_text=dg.render_json(d),
    )
    if error:
        log.error("digest %s not delivered: %s", d.day, error)
    return error


def _send(config: Config, *, subject: str, text: str, html: str, json_text: str) -> str | None:
    """E-mail and/or webhook, as configured. Returns None, or every failure in one line."""
    from monitor import deliver as dv

    errors = []
    smtp = config.digest.smtp
    if smtp is not None:
        try:
            dv.send_email(
                subject=subject,
                text=text,
                html=html,
                settings=dv.SmtpSettings(
                    host=smtp.host, port=smtp.port, starttls=smtp.starttls, ssl=smtp.ssl,
                    username=smtp.username, password=smtp.password, sender=smtp.sender,
                    recipients=list(smtp.recipients), timeout=config.timeout,
                ),
            )
        except MonitorError as exc:
            errors.append(f"email: {exc}")
    if config.digest.webhook_url:
        try:
            dv.post_webhook(
                json_text,
                dv.WebhookSettings(
                    url=config.digest.webhook_url, timeout=config.timeout, headers=config.digest.webhook_headers
                ),
            )
        except MonitorError as exc:
            errors.append(f"webhook: {exc}")
    return "; ".join(errors) or None


def retry_deliveries(config: Config, *, now: datetime, skip: set[str]) -> None:
    """Deliver again the digests whose delivery failed (files already exist)."""
    if not delivery_configured(config):
        return
    with open_store(config, now=now) as store:
        pending = [r["day"] for r in store.undelivered_digests() if r["day"] not in skip]
    for day in pending:
        log.info("retrying delivery of the %s digest", day)
        make_digest(config, date.fromisoformat(day), now=now, deliver=True)


def housekeeping(config: Config, *, now: datetime) -> int:
    """Prune unflagged articles older than keep_days; keep the database in shape."""
    with open_store(config, now=now) as store:
        pruned = store.prune(before=now - timedelta(days=config.keep_days))
        # Days before today: one summary row per feed; beyond fetch_log_days: gone.
        today = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        folded, dropped = store.compact_fetch_log(
            fold_before=today, drop_before=now - timedelta(days=config.fetch_log_days)
        )
        log.info("housekeeping: fetch log: %d rows folded into daily summaries, %d older rows dropped", folded, dropped)
        store.set_meta("last_housekeeping", iso(now))
        store.maintain()
    return pruned


def housekeeping_due(config: Config, *, now: datetime) -> bool:
    """Whether a day has passed since the last housekeeping (for `monitor run --once` from cron)."""
    with open_store(config, now=now) as store:
        last = store.meta("last_housekeeping")
    return last is None or datetime.fromisoformat(last) <= now - timedelta(days=1)


# ----------------------------------------------------------- rule tuning


def stored_fields(row: dict[str, Any]) -> dict[str, str]:
    """The rule fields of a stored article, exactly as they were when it was tagged."""
    from monitor.pipeline import rule_fields

    return rule_fields(
        title=row["title"],
        text=combined_text(row["summary_text"], row["content_text"]),
        author=row["author"],
        url=row["url"],
        feed=row["feed_name"],
    )


def stored_tagging(row: dict[str, Any]) -> Any:
    from core.types import Tagging

    return Tagging(
        score=row["score"], flagged=row["flagged"], tags=list(row["tags"]), matches=list(row["matches"]),
        tag_scores=dict(row["tag_scores"]),
    )


@dataclass
class Backtest:
    report: Any  # rules.BacktestReport
    titles: dict[int, tuple[str, str]]  # id -> (title, url), for the examples
    after: dict[int, Any]  # id -> new Tagging
    applied: int = 0


def backtest(
    config: Config, ruleset: Any, *, since: datetime | None, now: datetime, apply: bool = False
) -> Backtest:
    """Re-evaluate stored articles with `ruleset` and compare with how they are tagged now.

    With `apply`, store the new tagging of every article whose tagging
    changed, recording each tag added or removed.
    """
    from rules import compare

    before: dict[int, Any] = {}
    after: dict[int, Any] = {}
    titles: dict[int, tuple[str, str]] = {}
    with open_store(config, now=now) as store:
        for row in store.iter_articles(since=since):
            before[row["id"]] = stored_tagging(row)
            after[row["id"]] = ruleset.evaluate(stored_fields(row))
            titles[row["id"]] = (row["title"], row["link"] or row["url"])
        report = compare(before, after)
        result = Backtest(report, titles, after)
        if apply:
            for article_id, new in after.items():
                old = before[article_id]
                if (old.flagged, sorted(old.tags), old.matches, old.score) != (
                    new.flagged, sorted(new.tags), new.matches, new.score
                ):
                    store.retag(article_id, new, now=now, rules_version=ruleset.version)
                    result.applied += 1
    return result


# ------------------------------------------------------------- stories


def stories_of_day(config: Config, store: Store, day: date, *, include_unflagged: bool = False) -> list[dict[str, Any]]:
    """The day's stories (those with a flagged article that day, or all), best first, with their members."""
    from monitor import digest as dg
    from monitor import stories as st

    start, end = dg.day_bounds(day, config.digest.zone)
    rows = store.stories_between(start, end)
    by_story: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        by_story.setdefault(r["story_id"], []).append(r)
    flagged_tags: dict[int, set[str]] = {}
    for r in store.flagged_between(start, end):
        if r["story_id"] is not None:
            flagged_tags.setdefault(r["story_id"], set()).update(r["tags"])
    out = []
    for sid, members in by_story.items():
        if not include_unflagged and sid not in flagged_tags:
            continue
        ms = [
            st.Member(m["id"], m["title"], m["url"], m["feed"], datetime.fromisoformat(m["published"]), m["score"])
            for m in members
        ]
        lead = st.lead(ms)
        out.append(
            {
                "id": sid,
                "title": lead.title,
                "url": lead.url,
                "tags": sorted(flagged_tags.get(sid, set())),
                "score": round(st.story_rank(ms), 3),
                "first_seen": members[0]["story_first_seen"],
                "developing": st.developing(
                    datetime.fromisoformat(members[0]["story_first_seen"]).astimezone(config.digest.zone).date(), day
                ),
                "outlets": len(st.outlets(ms)),
                "members": [
                    {"url": m.url, "feed": m.feed, "title": m.title, "published": m.published.isoformat()}
                    for m in sorted(ms, key=lambda x: (x.published, x.article_id))
                ],
            }
        )
    out.sort(key=lambda s: (-s["score"], s["first_seen"], s["id"]))
    return out


# -------------------------------------------------------------- alerts


def check_alerts(config: Config, *, now: datetime) -> list[Any]:
    """Send the alerts that are due: stories past [alerts] high_score, and today's spikes. Once each."""
    from monitor import trends as tr

    if config.alert_score is None and not config.alert_spikes:
        return []
    with open_store(config, now=now) as store:
        candidates = (
            store.high_scoring_since(now - timedelta(days=1), config.alert_score) if config.alert_score is not None else []
        )
        scores = [tr.StoryScore(c["story_id"] if c["story_id"] is not None else -c["id"], c["score"], c["title"]) for c in candidates]
        spikes: list[tuple[str, date]] = []
        today = now.astimezone(config.digest.zone).date()
        if config.alert_spikes:
            table, _ = trends(config, store, today)
            spikes = [(t, today) for t in table.spikes()]
        keys = [tr.story_alert_key(s.story_id) for s in scores] + [tr.spike_alert_key(t, d) for t, d in spikes]
        due = tr.alerts_due(
            scores, spikes, high_score=config.alert_score, alerted=store.alerted_keys(keys),
            spike_alerts=config.alert_spikes,
        )
        by_story = {(c["story_id"] if c["story_id"] is not None else -c["id"]): c for c in candidates}
        for alert in due:
            detail: dict[str, Any] = {"kind": alert.kind}
            if alert.kind == "story":
                c = by_story[alert.story_id]
                detail |= {"title": c["title"], "url": c["link"], "feed": c["feed"], "score": c["score"], "tags": c["tags"]}
                line = f"ALERT: {c['title']} ({c['feed']}, score {c['score']:g}) {c['link']}"
            else:
                detail |= {"tag": alert.tag, "day": alert.day.isoformat() if alert.day else None}
                line = f"ALERT: spike in {alert.tag} on {alert.day}"
            if not store.record_alert(alert.key, alert.kind, at=now, detail=detail):
                continue
            log.warning(line)
            if delivery_configured(config):
                error = _deliver_alert(config, line, detail)
                store.record_alert_delivery(alert.key, at=now, error=error)
    return due


def _deliver_alert(config: Config, line: str, detail: dict[str, Any]) -> str | None:
    import json as _json
    from html import escape

    return _send(
        config,
        subject=line[:200],
        text=line + "\n",
        html=f"<p>{escape(line)}</p>",
        json_text=_json.dumps({"alert": detail}, ensure_ascii=False),
    )
