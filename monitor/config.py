"""Load and validate the configuration, once, at the edge.

Where the file comes from: ``--config PATH``, else ``$MONITOR_CONFIG``, else
``monitor.toml`` in the working directory, else built-in defaults (which work
out of the box). Every problem in a file is collected and reported together
as ``file: key: what is wrong`` in one ``ConfigError``; nothing half-loads.
Relative paths resolve against the config file's folder (the working
directory when there is no file).

This module reads a file and the environment and returns plain values. It
must not open the database, touch the network or import the pipeline.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import ConfigError
from core.redact import redact_url

CONFIG_ENV = "MONITOR_CONFIG"
DEFAULT_CONFIG_NAME = "monitor.toml"

# Real publisher feeds that cover the partnership, so `monitor run` does
# something meaningful before anyone edits a file. Company newsrooms, the
# AI sections of tech outlets, and news searches for the two companies.
DEFAULT_FEEDS: list[tuple[str, str]] = [
    ("https://openai.com/news/rss.xml", "OpenAI News"),
    ("https://blogs.microsoft.com/feed/", "Official Microsoft Blog"),
    ("https://news.microsoft.com/source/feed/", "Microsoft Source"),
    ("https://azure.microsoft.com/en-us/blog/feed/", "Microsoft Azure Blog"),
    ("https://techcrunch.com/category/artificial-intelligence/feed/", "TechCrunch AI"),
    ("https://www.theverge.com/rss/ai-artificial-intelligence/index.xml", "The Verge AI"),
    ("https://arstechnica.com/ai/feed/", "Ars Technica AI"),
    ("https://venturebeat.com/category/ai/feed/", "VentureBeat AI"),
    ("https://www.geekwire.com/microsoft/feed/", "GeekWire Microsoft"),
    ("https://www.technologyreview.com/topic/artificial-intelligence/feed", "MIT Technology Review AI"),
    (
        "https://news.google.com/rss/search?q=%22Microsoft%22+%22OpenAI%22&hl=en-US&gl=US&ceid=US:en",
        "Google News: Microsoft OpenAI",
    ),
    ("https://www.bing.com/news/search?q=Microsoft+OpenAI&format=rss", "Bing News: Microsoft OpenAI"),
]

# Ints beyond this are typos (or attempts to overflow a C long somewhere
# downstream: SQLite, time.sleep, datetime); every int key has its own bound
# at or below it.
_INT_MAX = 1_000_000_000
# The longest schedule interval or backoff accepted: a year.
_MAX_DURATION = 366 * 86400

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """'30m' -> 1800 seconds. Raises ValueError with a readable message."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration like '90s', '30m', '2h' or '7d'")
    seconds = int(m.group(1)) * _UNITS[m.group(2)]
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return seconds


@dataclass(frozen=True)
class FeedSpec:
    url: str
    name: str | None = None
    interval: int | None = None  # seconds; None means the [schedule] default
    full_text: bool = False  # fetch each new entry's page for its whole text (monitor.fulltext)
    category: str | None = None  # a folder, as OPML export writes it


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    recipients: list[str]
    starttls: bool = True
    ssl: bool = False
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class DigestConfig:
    time: str = "07:00"
    timezone: str = "UTC"
    day: str = "yesterday"  # or "today": which day the scheduled digest covers
    catch_up_days: int = 3
    tag_order: list[str] = field(
        default_factory=lambda: [
            "partnership",
            "investment",
            "ipo",
            "pbc",
            "lawsuit",
            "azure",
            "api",
            "copilot",
            "enterprise",
            "data_centers",
        ]
    )
    max_items_per_tag: int | None = None
    smtp: SmtpConfig | None = None
    webhook_url: str | None = None
    webhook_headers: dict[str, str] = field(default_factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class WebConfig:
    """[web]: the analyst's web app (`monitor serve`, or `monitor run` when enabled)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8470
    user: str = "analyst"  # who labels are recorded as, and the HTTP Basic user name when a password is set
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class QueueConfig:
    """[queue]: distributed polling through Celery workers (monitor.queue). Absent: polling in-process."""

    broker: str  # redis://[:password@]host:port/db
    result_backend: str  # defaults to the broker
    visibility_timeout: int = 3600  # seconds before Redis hands an unacknowledged task to another worker
    task_timeout: int = 600  # seconds one feed's task may run before it is stopped
    lock_timeout: int = 30  # seconds a feed or scheduler lock outlives its holder's last renewal
    tick: int = 60  # seconds between the scheduler's looks for due feeds


@dataclass(frozen=True)
class Config:
    config_path: Path | None
    base_dir: Path
    data_dir: Path
    storage_path: Path
    keep_days: int
    interval: int
    jitter: float
    max_errors: int
    max_backoff: int
    concurrency: int
    per_host: int
    timeout: float
    max_bytes: int
    user_agent: str | None
    feeds: list[FeedSpec]
    feeds_from_defaults: bool
    rule_files_configured: list[Path] | None
    digest: DigestConfig
    digest_dir: Path
    story_window_days: int = 3
    stories_enabled: bool = True
    fetch_log_days: int = 30
    trend_window: int = 14
    spike_factor: float = 2.0
    spike_min_count: int = 3
    alert_score: float | None = None
    alert_spikes: bool = False
    web: WebConfig = field(default_factory=WebConfig)
    full_text_min_chars: int = 0  # [fulltext] min_chars: fetch the page of any entry with less text
    queue: QueueConfig | None = None
    # [storage] url: a postgresql:// URL (password included when given by password/password_env)
    storage_url: str | None = field(default=None, repr=False)

    @property
    def store_target(self) -> Path | str:
        """What `storage.open_store` opens: the PostgreSQL URL when one is configured, else the SQLite file."""
        return self.storage_url or self.storage_path

    @property
    def store_label(self) -> str:
        """The store as shown in messages and logs: the SQLite path, or the URL with no user info or query."""
        return redact_url(self.storage_url.split("?")[0]) if self.storage_url else str(self.storage_path)

    @property
    def secrets(self) -> list[str]:
        """Every configured value that must never be shown, logged or stored
        (see core.redact): header values, the SMTP password, the webhook URL's
        path and query (hook services put the token there), feed URL passwords,
        the web app's password."""
        found: list[str] = list(self.digest.webhook_headers.values())
        if self.digest.smtp and self.digest.smtp.password:
            found.append(self.digest.smtp.password)
        if self.digest.webhook_url:
            parts = urlsplit(self.digest.webhook_url)
            found += [p for p in (parts.path if parts.path != "/" else "", parts.query, parts.password or "") if p]
        found += [p for p in (_url_password(f.url) for f in self.feeds) if p]
        if self.web.password:
            found.append(self.web.password)
        if self.queue:
            found += [p for p in (_url_password(self.queue.broker), _url_password(self.queue.result_backend)) if p]
        if self.storage_url and _url_password(self.storage_url):
            found.append(unquote(_url_password(self.storage_url) or ""))
        return found

    @property
    def rule_files(self) -> list[Path]:
        """The rule files in force: the configured ones, else the shipped default."""
        if self.rule_files_configured is not None:
            return list(self.rule_files_configured)
        from rules import default_rule_files

        return default_rule_files()


def _url_password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def find_config_path(explicit: str | os.PathLike[str] | None, cwd: Path | None = None) -> Path | None:
    """Which file to read: --config, then $MONITOR_CONFIG, then ./monitor.toml."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    candidate = (cwd or Path.cwd()) / DEFAULT_CONFIG_NAME
    return candidate if candidate.exists() else None


def locate_key(text: str, keypath: str) -> int | None:
    """The 1-based line where ``keypath`` (``fetch.concurrency``, ``feeds[2].url``,
    ``digest.smtp``) is written, or None. tomllib keeps no positions, so this
    follows table headers line by line: good enough to point a user at it."""
    parts = re.findall(r"([A-Za-z0-9_-]+)(?:\[(\d+)\])?", keypath)
    if not parts:
        return None
    wanted_tables = [name for name, _ in parts[:-1]]
    last, last_index = parts[-1]
    counts: dict[str, int] = {}
    current: list[str] = []
    current_index: dict[str, int] = {}
    header = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.-]+)\s*\]\]?")
    for lineno, line in enumerate(text.splitlines(), start=1):
        m = header.match(line)
        if m:
            current = m.group(2).split(".")
            if m.group(1) == "[[":
                counts[m.group(2)] = counts.get(m.group(2), 0) + 1
                current_index = {current[-1]: counts[m.group(2)]}
            else:
                current_index = {}
            # A whole table named by the problem: point at its header.
            if current == [n for n, _ in parts] and (not last_index or current_index.get(last) == int(last_index)):
                return lineno
            continue
        if current == wanted_tables and all(
            not idx or current_index.get(name) == int(idx) for name, idx in parts[:-1]
        ):
            if re.match(rf"^\s*{re.escape(last)}\s*=", line):
                return lineno
    # A top-level key written inline or not found: fall back to its bare name.
    for lineno, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"^\s*\[*\s*{re.escape(last)}\b", line):
            return lineno
    return None


class _Reader:
    """Reads typed values out of a TOML table while collecting every problem."""

    def __init__(self, source: str, text: str = ""):
        self.source = source
        self.text = text
        self.problems: list[str] = []
        self._lines: list[int] = []

    def problem(self, key: str, what: str, at: str | None = None) -> None:
        """Record ``file:line: key: what``; ``at`` names another key to find the line by."""
        line = locate_key(self.text, at or key) if self.text else None
        where = f"{self.source}:{line}" if line else self.source
        self.problems.append(f"{where}: {key}: {what}")
        self._lines.append(line or 0)

    def in_line_order(self) -> list[str]:
        """The problems as a user reads the file: top to bottom (a problem with
        no line first, since it concerns the file as a whole); stable otherwise."""
        order = sorted(range(len(self.problems)), key=lambda i: self._lines[i])
        return [self.problems[i] for i in order]

    def table(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.problem(key, f"must be a table, got {type(value).__name__}")
            return {}
        return value

    def get(self, data: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any, where: str) -> Any:
        if key not in data:
            return default
        value = data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python; a TOML `true` is never a valid number here.
        if isinstance(value, bool) and bool not in kinds:
            self.problem(where, f"must be {_kind_name(kinds)}, got a boolean")
            return default
        if not isinstance(value, kinds):
            self.problem(where, f"must be {_kind_name(kinds)}, got {type(value).__name__} {value!r}")
            return default
        return value

    def duration(self, data: dict[str, Any], key: str, default: int, where: str) -> int:
        raw = self.get(data, key, (str, int), None, where)
        if raw is None:
            return default
        if isinstance(raw, int):
            seconds = raw
            if seconds <= 0:
                self.problem(where, "must be a positive number of seconds")
                return default
        else:
            try:
                seconds = parse_duration(raw)
            except ValueError as exc:
                self.problem(where, str(exc))
                return default
        if seconds > _MAX_DURATION:
            self.problem(where, f"must be at most {_MAX_DURATION // 86400} days, got {raw!r}")
            return default
        return seconds

    def positive(self, data: dict[str, Any], key: str, default: int, where: str, most: int = _INT_MAX) -> int:
        value = self.get(data, key, int, default, where)
        if value < 1:
            self.problem(where, f"must be at least 1, got {value}")
            return default
        if value > most:
            self.problem(where, f"must be at most {most}, got {value}")
            return default
        return int(value)

    def integer(
        self, data: dict[str, Any], key: str, default: Any, where: str, least: int = 0, most: int = _INT_MAX
    ) -> Any:
        """An int in [least, most]; ``default`` (which may be None) when absent or wrong."""
        value = self.get(data, key, int, None, where)
        if value is None:
            return default
        if not least <= value <= most:
            self.problem(where, f"must be between {least} and {most}, got {value}")
            return default
        return int(value)

    def number(
        self,
        data: dict[str, Any],
        key: str,
        default: Any,
        where: str,
        *,
        least: float,
        most: float,
        above: bool = False,
        meaning: str = "",
    ) -> Any:
        """A finite float in [least, most] (or (least, most] with ``above``).

        TOML accepts ``nan`` and ``inf``: a NaN compares false with everything,
        so a NaN threshold would silently disable whatever it guards, and an
        infinity leaks into JSON as the non-JSON token ``Infinity``. Both are
        rejected here, like a number out of range, with the key's line."""
        raw = self.get(data, key, (int, float), None, where)
        if raw is None:
            return default
        try:
            value = float(raw)
        except OverflowError:  # a TOML integer too large for a float
            value = math.inf
        low = "above" if above else "at least"
        if not math.isfinite(value):
            self.problem(where, f"must be a finite number{meaning}, got {raw!r}")
            return default
        if value < least or (above and value == least) or value > most:
            self.problem(where, f"must be {low} {least:g} and at most {most:g}{meaning}, got {raw!r}")
            return default
        return value

    def unknown(self, data: dict[str, Any], allowed: set[str], where: str) -> None:
        for key in data:
            if key not in allowed:
                hint = _closest(key, allowed)
                self.problem(f"{where}{key}", "unknown key" + (f" (did you mean {hint!r}?)" if hint else ""))


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {int: "a number", float: "a number", str: "a string", bool: "true or false", list: "a list", dict: "a table"}
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def _closest(word: str, options: set[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.7)
    return found[0] if found else None


_TOP_KEYS = {"storage", "schedule", "fetch", "feeds", "rules", "digest", "stories", "trends", "alerts", "web", "fulltext", "queue"}


def load_config(path: str | os.PathLike[str] | None = None, *, cwd: Path | None = None) -> Config:
    """Load the configuration (see the module docstring for where from).

    Raises ConfigError listing every problem when the file is invalid.
    """
    config_path = find_config_path(path, cwd)
    data: dict[str, Any] = {}
    if config_path is not None:
        source = str(config_path)
        try:
            text = config_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError([f"{source}: file not found"]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([f"{source}: cannot read: {exc}"]) from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([_toml_syntax_problem(source, exc)]) from None
        base_dir = config_path.resolve().parent
    else:
        source, text = "(defaults)", ""
        base_dir = (cwd or Path.cwd()).resolve()
    return _build(data, _Reader(source, text), config_path, base_dir)


_TOML_AT = re.compile(r"^(?P<what>.*?)\s*\(at (?:line (?P<line>\d+), column (?P<col>\d+)|end of document)\)\s*$")


def _toml_syntax_problem(source: str, exc: tomllib.TOMLDecodeError) -> str:
    """``file:line:col: TOML syntax error: what``, as the rule files report errors.

    Python 3.11's tomllib keeps the position only inside the message text
    ("Invalid value (at line 2, column 15)"), so it is read back from there."""
    text = str(exc)
    m = _TOML_AT.match(text)
    if not m:
        return f"{source}: TOML syntax error: {text}"
    what = m.group("what")
    if m.group("line"):
        return f"{source}:{m.group('line')}:{m.group('col')}: TOML syntax error: {what}"
    return f"{source}: TOML syntax error at the end of the file: {what}"


def _build(data: dict[str, Any], r: _Reader, config_path: Path | None, base_dir: Path) -> Config:
    r.unknown(data, _TOP_KEYS, "")

    def resolve(p: str) -> Path:
        return (base_dir / Path(p).expanduser()).resolve()

    storage = r.table(data, "storage")
    r.unknown(storage, {"path", "data_dir", "keep_days", "fetch_log_days", "url", "password", "password_env"}, "storage.")
    data_dir = resolve(r.get(storage, "data_dir", str, "data", "storage.data_dir"))
    storage_path_raw = r.get(storage, "path", str, None, "storage.path")
    storage_path = resolve(storage_path_raw) if storage_path_raw else data_dir / "monitor.db"
    keep_days = r.positive(storage, "keep_days", 90, "storage.keep_days", most=36500)
    # The fetch log (one row per fetch: ~a million a day at 10,000 feeds) is kept this long;
    # housekeeping folds each feed's earlier days into one row per day meanwhile.
    fetch_log_days = r.positive(storage, "fetch_log_days", 30, "storage.fetch_log_days", most=36500)
    storage_url = _storage_url(r, storage)

    schedule = r.table(data, "schedule")
    r.unknown(schedule, {"interval", "jitter", "max_errors", "max_backoff"}, "schedule.")
    interval = r.duration(schedule, "interval", 1800, "schedule.interval")
    jitter = r.number(
        schedule, "jitter", 0.1, "schedule.jitter", least=0, most=0.5, meaning=" (a fraction of the interval)"
    )
    max_errors = r.positive(schedule, "max_errors", 10, "schedule.max_errors", most=1_000_000)
    max_backoff = r.duration(schedule, "max_backoff", 86400, "schedule.max_backoff")

    fetch = r.table(data, "fetch")
    r.unknown(fetch, {"concurrency", "per_host", "timeout", "max_bytes", "user_agent"}, "fetch.")
    concurrency = r.positive(fetch, "concurrency", 16, "fetch.concurrency", most=256)
    per_host = r.positive(fetch, "per_host", 4, "fetch.per_host", most=256)
    timeout = r.number(fetch, "timeout", 30.0, "fetch.timeout", least=0, most=3600, above=True, meaning=" (seconds)")
    max_bytes = r.positive(fetch, "max_bytes", 10_000_000, "fetch.max_bytes", most=1_000_000_000)
    user_agent = r.get(fetch, "user_agent", str, None, "fetch.user_agent")

    feeds: list[FeedSpec] = []
    raw_feeds = data.get("feeds")
    feeds_from_defaults = raw_feeds is None
    if raw_feeds is None:
        feeds = [FeedSpec(url, name) for url, name in DEFAULT_FEEDS]
    elif not isinstance(raw_feeds, list):
        r.problem("feeds", "must be an array of tables ([[feeds]])")
    else:
        seen: set[str] = set()
        for i, item in enumerate(raw_feeds, start=1):
            where = f"feeds[{i}]"
            if not isinstance(item, dict):
                r.problem(where, "must be a table with at least url = \"...\"")
                continue
            r.unknown(item, {"url", "name", "interval", "full_text", "category"}, where + ".")
            url = r.get(item, "url", str, None, where + ".url")
            if url is None:
                if "url" not in item:
                    # The key is absent, so point at the entry's [[feeds]] header.
                    r.problem(where + ".url", "is missing", at=where)
                continue
            if not re.match(r"^https?://[^/\s]+", url):
                r.problem(where + ".url", f"{redact_url(url)!r} is not an http(s) URL")
                continue
            if url in seen:
                r.problem(where + ".url", f"{redact_url(url)!r} is listed twice")
                continue
            seen.add(url)
            name = r.get(item, "name", str, None, where + ".name")
            feed_interval = r.duration(item, "interval", 0, where + ".interval") or None
            full_text = r.get(item, "full_text", bool, False, where + ".full_text")
            category = r.get(item, "category", str, None, where + ".category")
            feeds.append(FeedSpec(url, name, feed_interval, full_text, category.strip() or None if category else None))

    rules_table = r.table(data, "rules")
    r.unknown(rules_table, {"files"}, "rules.")
    rule_files: list[Path] | None = None
    raw_files = r.get(rules_table, "files", list, None, "rules.files")
    if raw_files is not None:
        rule_files = []
        for i, item in enumerate(raw_files, start=1):
            if not isinstance(item, str):
                r.problem(f"rules.files[{i}]", "must be a path string")
                continue
            p = resolve(item)
            if not p.exists():
                r.problem(f"rules.files[{i}]", f"{p} does not exist")
            rule_files.append(p)
        if not raw_files:
            r.problem("rules.files", "is empty: list at least one rule file, or remove it to use the defaults")

    digest = _read_digest(r, r.table(data, "digest"))
    digest_dir = resolve(r.get(r.table(data, "digest"), "output_dir", str, str(data_dir / "digests"), "digest.output_dir"))

    stories = r.table(data, "stories")
    r.unknown(stories, {"window_days", "enabled"}, "stories.")
    stories_enabled = r.get(stories, "enabled", bool, True, "stories.enabled")
    # Band keys are scoped to 7-day periods (monitor.stories.PERIOD): a longer window would miss pairs.
    story_window_days = r.positive(stories, "window_days", 3, "stories.window_days", most=7)

    trends = r.table(data, "trends")
    r.unknown(trends, {"window", "factor", "min_count"}, "trends.")
    trend_window = r.positive(trends, "window", 14, "trends.window", most=3650)
    spike_factor = r.number(
        trends, "factor", 2.0, "trends.factor", least=1, most=1_000_000, meaning=" (times the trailing median)"
    )
    spike_min_count = r.positive(trends, "min_count", 3, "trends.min_count", most=_INT_MAX)

    alerts = r.table(data, "alerts")
    r.unknown(alerts, {"high_score", "spikes"}, "alerts.")
    alert_score = r.number(alerts, "high_score", None, "alerts.high_score", least=-1e9, most=1e9)
    alert_spikes = r.get(alerts, "spikes", bool, False, "alerts.spikes")

    web = _read_web(r, r.table(data, "web"))
    fulltext = r.table(data, "fulltext")
    r.unknown(fulltext, {"min_chars"}, "fulltext.")
    full_text_min_chars = r.get(fulltext, "min_chars", int, 0, "fulltext.min_chars")
    if full_text_min_chars < 0:
        r.problem("fulltext.min_chars", f"must be 0 (off) or a number of characters, got {full_text_min_chars}")
        full_text_min_chars = 0

    queue = _read_queue(r, r.table(data, "queue"))

    if r.problems:
        raise ConfigError(r.in_line_order())
    return Config(
        config_path=config_path,
        base_dir=base_dir,
        data_dir=data_dir,
        storage_path=storage_path,
        keep_days=keep_days,
        fetch_log_days=fetch_log_days,
        interval=interval,
        jitter=jitter,
        max_errors=max_errors,
        max_backoff=max_backoff,
        concurrency=concurrency,
        per_host=per_host,
        timeout=timeout,
        max_bytes=max_bytes,
        user_agent=user_agent,
        feeds=feeds,
        feeds_from_defaults=feeds_from_defaults,
        rule_files_configured=rule_files,
        digest=digest,
        digest_dir=digest_dir,
        story_window_days=story_window_days,
        stories_enabled=stories_enabled,
        trend_window=trend_window,
        spike_factor=spike_factor,
        spike_min_count=spike_min_count,
        alert_score=alert_score,
        alert_spikes=alert_spikes,
        web=web,
        full_text_min_chars=full_text_min_chars,
        storage_url=storage_url,
        queue=queue,
    )


_QUEUE_URL = re.compile(r"^rediss?://[^\s]*$")


def _read_queue(r: _Reader, table: dict[str, Any]) -> QueueConfig | None:
    """[queue]: only Redis is accepted as broker and result backend (the locks and the
    per-host leases live there too). A URL is shown without its password."""
    r.unknown(
        table, {"broker", "result_backend", "visibility_timeout", "task_timeout", "lock_timeout", "tick"}, "queue."
    )
    if not table:
        return None
    broker = r.get(table, "broker", str, None, "queue.broker")
    backend = r.get(table, "result_backend", str, None, "queue.result_backend")
    for key, url in (("queue.broker", broker), ("queue.result_backend", backend)):
        if url is not None and not _QUEUE_URL.match(url):
            r.problem(key, f"{redact_url(url)!r} is not a redis:// or rediss:// URL")
    if broker is None:
        if "broker" not in table:
            r.problem("queue.broker", "is missing (e.g. broker = \"redis://127.0.0.1:6379/0\")", at="queue")
        return None
    return QueueConfig(
        broker=broker,
        result_backend=backend or broker,
        visibility_timeout=r.duration(table, "visibility_timeout", 3600, "queue.visibility_timeout"),
        task_timeout=r.duration(table, "task_timeout", 600, "queue.task_timeout"),
        lock_timeout=r.duration(table, "lock_timeout", 30, "queue.lock_timeout"),
        tick=r.duration(table, "tick", 60, "queue.tick"),
    )


def _password(r: _Reader, table: dict[str, Any], prefix: str) -> str | None:
    """`password`, or the environment variable `password_env` names (which wins when both are given)."""
    password = r.get(table, "password", str, None, f"{prefix}password")
    password_env = r.get(table, "password_env", str, None, f"{prefix}password_env")
    if password_env:
        password = os.environ.get(password_env)
        if password is None:
            r.problem(f"{prefix}password_env", f"environment variable {password_env} is not set")
    return password


def _storage_url(r: _Reader, table: dict[str, Any]) -> str | None:
    """`[storage] url` (PostgreSQL), with `password` / `password_env` put into it when given."""
    url = r.get(table, "url", str, None, "storage.url")
    password = _password(r, table, "storage.")
    if url is None:
        if password is not None:
            r.problem("storage.password", "is only used with storage.url (a postgresql:// URL)")
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        r.problem("storage.url", f"not a usable URL ({exc})")
        return None
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        r.problem("storage.url", "must be a postgresql://user@host:port/database URL")
        return None
    if password is not None:
        user = quote(unquote(parts.username or ""), safe="")
        host = parts.netloc.rpartition("@")[2]
        url = urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}"))
    return url


def _read_web(r: _Reader, table: dict[str, Any]) -> WebConfig:
    r.unknown(table, {"enabled", "host", "port", "user", "password", "password_env"}, "web.")
    d = WebConfig()
    port = r.get(table, "port", int, d.port, "web.port")
    if not 0 < port < 65536:
        r.problem("web.port", f"must be between 1 and 65535, got {port}")
        port = d.port
    password = _password(r, table, "web.")
    user = r.get(table, "user", str, d.user, "web.user")
    if not user.strip() or ":" in user:
        r.problem("web.user", "must be a non-empty name without ':'")
        user = d.user
    return WebConfig(
        enabled=r.get(table, "enabled", bool, False, "web.enabled"),
        host=r.get(table, "host", str, d.host, "web.host"),
        port=port,
        user=user,
        password=password or None,
    )


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _header_problem(name: str, value: Any) -> str | None:
    """Why an HTTP header cannot be sent as written, never quoting the value
    (webhook headers carry tokens)."""
    if not _HEADER_NAME.match(name):
        return "is not a valid HTTP header name"
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if any(c in value for c in "\r\n\0"):
        return "the value contains a line break or NUL, which HTTP headers cannot carry (the value is not shown)"
    if value[:1].isspace() or value[-1:].isspace():
        return "the value starts or ends with whitespace; remove it (the value is not shown)"
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return "the value has characters outside Latin-1, which HTTP headers cannot carry (the value is not shown)"
    return None


def _read_digest(r: _Reader, table: dict[str, Any]) -> DigestConfig:
    r.unknown(
        table,
        {"time", "timezone", "day", "catch_up_days", "tag_order", "max_items_per_tag", "output_dir", "smtp", "webhook"},
        "digest.",
    )
    defaults = DigestConfig()
    time = r.get(table, "time", str, defaults.time, "digest.time")
    if not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", time):
        r.problem("digest.time", f"{time!r} is not a time like '07:00'")
        time = defaults.time
    timezone = r.get(table, "timezone", str, defaults.timezone, "digest.timezone")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        r.problem("digest.timezone", f"{timezone!r} is not an IANA time zone name (e.g. 'Europe/Berlin')")
        timezone = defaults.timezone
    day = r.get(table, "day", str, defaults.day, "digest.day")
    if day not in ("yesterday", "today"):
        r.problem("digest.day", f"must be 'yesterday' or 'today', got {day!r}")
        day = defaults.day
    catch_up = r.integer(table, "catch_up_days", defaults.catch_up_days, "digest.catch_up_days", least=0, most=366)
    tag_order = r.get(table, "tag_order", list, defaults.tag_order, "digest.tag_order")
    if not all(isinstance(t, str) for t in tag_order):
        r.problem("digest.tag_order", "must be a list of tag names")
        tag_order = defaults.tag_order
    max_items = r.integer(table, "max_items_per_tag", None, "digest.max_items_per_tag", least=1, most=100_000)

    smtp: SmtpConfig | None = None
    smtp_table = r.table(table, "smtp")
    if smtp_table:
        r.unknown(
            smtp_table,
            {"host", "port", "sender", "recipients", "starttls", "ssl", "username", "password", "password_env"},
            "digest.smtp.",
        )
        host = r.get(smtp_table, "host", str, None, "digest.smtp.host")
        sender = r.get(smtp_table, "sender", str, None, "digest.smtp.sender")
        recipients = r.get(smtp_table, "recipients", list, [], "digest.smtp.recipients")
        for key, value in (("host", host), ("sender", sender)):
            if not value:
                r.problem(f"digest.smtp.{key}", "is missing")
        if not recipients or not all(isinstance(x, str) and "@" in x for x in recipients):
            r.problem("digest.smtp.recipients", "must be a non-empty list of e-mail addresses")
        password = _password(r, smtp_table, "digest.smtp.")
        username = r.get(smtp_table, "username", str, None, "digest.smtp.username")
        # smtplib sends AUTH as ASCII: anything else raised a UnicodeEncodeError
        # at the first digest, hours later. Say so now, without the value.
        for key, value in (("username", username), ("password", password)):
            if value is not None and not value.isascii():
                at = "digest.smtp.password_env" if key == "password" and smtp_table.get("password_env") else f"digest.smtp.{key}"
                r.problem(
                    at,
                    f"the SMTP {key} contains non-ASCII characters, which SMTP login cannot send "
                    "(the value is not shown)",
                )
        if host and sender and recipients:
            smtp = SmtpConfig(
                host=host,
                port=r.integer(smtp_table, "port", 587, "digest.smtp.port", least=1, most=65535),
                sender=sender,
                recipients=list(recipients),
                starttls=r.get(smtp_table, "starttls", bool, True, "digest.smtp.starttls"),
                ssl=r.get(smtp_table, "ssl", bool, False, "digest.smtp.ssl"),
                username=username,
                password=password,
            )

    webhook_url: str | None = None
    webhook_headers: dict[str, str] = {}
    webhook = r.table(table, "webhook")
    if webhook:
        r.unknown(webhook, {"url", "headers"}, "digest.webhook.")
        webhook_url = r.get(webhook, "url", str, None, "digest.webhook.url")
        if not webhook_url or not re.match(r"^https?://", webhook_url):
            r.problem("digest.webhook.url", "must be an http(s) URL")
            webhook_url = None
        headers = r.get(webhook, "headers", dict, {}, "digest.webhook.headers")
        for name, value in headers.items():
            what = _header_problem(name, value)
            if what:
                r.problem(f"digest.webhook.headers.{name}", what, at="digest.webhook.headers")
            else:
                webhook_headers[name] = value

    return DigestConfig(
        time=time,
        timezone=timezone,
        day=day,
        catch_up_days=catch_up,
        tag_order=list(tag_order),
        max_items_per_tag=max_items,
        smtp=smtp,
        webhook_url=webhook_url,
        webhook_headers=webhook_headers,
    )
