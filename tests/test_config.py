"""Configuration: defaults, where the file comes from, relative paths, and every problem at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from monitor.config import DEFAULT_FEEDS, load_config, locate_key, parse_duration


def write(tmp_path: Path, text: str, name: str = "monitor.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_no_file_gives_working_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    cfg = load_config(None, cwd=tmp_path)
    assert cfg.config_path is None
    assert cfg.storage_path == tmp_path.resolve() / "data" / "monitor.db"
    assert cfg.digest_dir == tmp_path.resolve() / "data" / "digests"
    assert [f.url for f in cfg.feeds] == [u for u, _ in DEFAULT_FEEDS] and len(cfg.feeds) >= 8
    assert (cfg.interval, cfg.concurrency, cfg.per_host) == (1800, 16, 4)
    assert cfg.rule_files_configured is None


def test_file_is_found_by_flag_then_env_then_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd_file = write(tmp_path, '[schedule]\ninterval = "5m"\n')
    env_file = write(tmp_path, '[schedule]\ninterval = "10m"\n', "env.toml")
    flag_file = write(tmp_path, '[schedule]\ninterval = "15m"\n', "flag.toml")
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    assert load_config(None, cwd=tmp_path).interval == 300
    monkeypatch.setenv("MONITOR_CONFIG", str(env_file))
    assert load_config(None, cwd=tmp_path).interval == 600
    assert load_config(flag_file, cwd=tmp_path).interval == 900
    assert cwd_file.exists()


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    sub = tmp_path / "conf"
    sub.mkdir()
    (sub / "mine.toml").write_text("threshold = 1\n")
    cfg = load_config(write(sub, """
[storage]
path = "db/x.db"
[digest]
output_dir = "out"
[rules]
files = ["mine.toml"]
[[feeds]]
url = "https://example.org/feed.xml"
name = "Example"
interval = "15m"
"""), cwd=tmp_path)
    assert cfg.storage_path == sub.resolve() / "db" / "x.db"
    assert cfg.digest_dir == sub.resolve() / "out"
    assert cfg.rule_files == [sub.resolve() / "mine.toml"]
    assert [(f.url, f.name, f.interval) for f in cfg.feeds] == [("https://example.org/feed.xml", "Example", 900)]


def test_every_problem_is_reported_at_once_with_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, """[schedule]
interval = "often"

[fetch]
concurrency = 0
per_hots = 2

[[feeds]]
url = "ftp://nope"

[[feeds]]
name = "no url"

[digest]
timezone = "Mars/Olympus"
time = "25:00"
""")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    problems = err.value.problems
    text = "\n".join(problems)
    assert f"{path}:2: schedule.interval:" in text
    assert f"{path}:5: fetch.concurrency: must be at least 1" in text
    assert f"{path}:6: fetch.per_hots: unknown key (did you mean 'per_host'?)" in text
    assert f"{path}:9: feeds[1].url: 'ftp://nope' is not an http(s) URL" in text
    # The missing key has no line of its own: the entry's [[feeds]] header is named.
    assert f"{path}:11: feeds[2].url: is missing" in text
    assert f"{path}:15: digest.timezone:" in text
    assert f"{path}:16: digest.time:" in text
    assert len(problems) == 7
    # Listed as the file reads, top to bottom (they are found table by table).
    lines = [int(p.split(":")[1]) for p in problems]
    assert lines == sorted(lines) == [2, 5, 6, 9, 11, 15, 16]


def test_invalid_toml_names_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "[fetch]\ntimeout = 3\nconcurrency = = 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.problems == [f"{path}:3:15: TOML syntax error: Invalid value"]


def test_toml_error_at_the_end_of_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[fetch]\nuser_agent = "unterminated')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    (problem,) = err.value.problems
    assert problem.startswith(f"{path}:") and "TOML syntax error" in problem
    assert "(at " not in problem  # the position is in front, not repeated at the end


# Each value TOML accepts but the monitor must not: NaN compares false with
# everything (a NaN factor never flags a spike), an infinity is not JSON, and
# a huge int overflows a float or a C long further in.
@pytest.mark.parametrize(
    "table,line",
    [
        ("[fetch]\ntimeout = nan", "fetch.timeout: must be a finite number (seconds), got nan"),
        ("[fetch]\ntimeout = inf", "fetch.timeout: must be a finite number (seconds), got inf"),
        ("[fetch]\ntimeout = 0", "fetch.timeout: must be above 0 and at most 3600 (seconds), got 0"),
        ("[fetch]\ntimeout = -inf", "fetch.timeout: must be a finite number (seconds), got -inf"),
        ("[fetch]\ntimeout = 1e400", "fetch.timeout: must be a finite number (seconds), got inf"),
        ("[fetch]\ntimeout = 99999999999999999999999999999999", "fetch.timeout: must be above 0 and at most 3600"),
        (
            "[fetch]\ntimeout = " + "9" * 400,
            "fetch.timeout: must be a finite number (seconds), got " + "9" * 400,
        ),
        ("[trends]\nfactor = nan", "trends.factor: must be a finite number (times the trailing median), got nan"),
        ("[trends]\nfactor = 0.5", "trends.factor: must be at least 1 and at most 1e+06"),
        ("[alerts]\nhigh_score = inf", "alerts.high_score: must be a finite number, got inf"),
        ("[alerts]\nhigh_score = nan", "alerts.high_score: must be a finite number, got nan"),
        ("[schedule]\njitter = nan", "schedule.jitter: must be a finite number (a fraction of the interval)"),
        ("[schedule]\njitter = 0.9", "schedule.jitter: must be at least 0 and at most 0.5"),
        ("[schedule]\ninterval = 99999999999999999999", "schedule.interval: must be at most 366 days"),
        ("[schedule]\nmax_backoff = \"99999999d\"", "schedule.max_backoff: must be at most 366 days"),
        ("[schedule]\nmax_errors = 99999999999999999999", "schedule.max_errors: must be at most 1000000"),
        ("[fetch]\nconcurrency = 100000", "fetch.concurrency: must be at most 256"),
        ("[fetch]\nmax_bytes = 99999999999999999999", "fetch.max_bytes: must be at most 1000000000"),
        ("[storage]\nkeep_days = 99999999999999999999", "storage.keep_days: must be at most 36500"),
        ("[stories]\nwindow_days = 8", "stories.window_days: must be at most 7"),
        ("[trends]\nwindow = 99999999999", "trends.window: must be at most 3650"),
        ("[digest]\ncatch_up_days = -1", "digest.catch_up_days: must be between 0 and 366, got -1"),
        ("[digest]\nmax_items_per_tag = 0", "digest.max_items_per_tag: must be between 1 and 100000, got 0"),
        (
            '[digest.smtp]\nhost = "h"\nsender = "a@b"\nrecipients = ["c@d"]\nport = 70000',
            "digest.smtp.port: must be between 1 and 65535, got 70000",
        ),
    ],
)
def test_non_finite_and_out_of_range_numbers_name_their_line(tmp_path: Path, table: str, line: str) -> None:
    path = write(tmp_path, "# a comment first\n" + table + "\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    (problem,) = err.value.problems
    last_line = len(table.splitlines()) + 1
    assert problem.startswith(f"{path}:{last_line}: {line}"), problem


def test_numbers_in_range_still_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[fetch]\ntimeout = 2.5\n[trends]\nfactor = 1\n[alerts]\nhigh_score = -3\n[schedule]\njitter = 0\n"
        "[digest]\ncatch_up_days = 0\n",
    )
    cfg = load_config(path)
    assert (cfg.timeout, cfg.spike_factor, cfg.alert_score, cfg.jitter, cfg.digest.catch_up_days) == (
        2.5, 1.0, -3.0, 0.0, 0,
    )


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.toml")


def test_wrong_types_are_named(tmp_path: Path) -> None:
    path = write(tmp_path, '[fetch]\nconcurrency = "many"\ntimeout = true\n[rules]\nfiles = ["missing.toml"]\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert "fetch.concurrency: must be a number, got str 'many'" in text
    assert "fetch.timeout: must be a number, got a boolean" in text
    assert "rules.files[1]:" in text and "does not exist" in text


@pytest.mark.parametrize(
    "text,seconds", [("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), (" 5m ", 300)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 minutes", "-5m", "0m", "1w"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_locate_key_follows_array_tables() -> None:
    text = '[[feeds]]\nurl = "a"\n\n[[feeds]]\nname = "b"\nurl = "c"\n[fetch]\nurl = "x"\n'
    assert locate_key(text, "feeds[2].url") == 6
    assert locate_key(text, "feeds[1].url") == 2
    assert locate_key(text, "fetch.url") == 8


def test_storage_url_selects_postgresql_with_the_password_kept_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, '[storage]\nurl = "postgresql://mon@db.internal:5433/monitor?sslmode=require"\n'
                           'password_env = "MONITOR_PG_PW"\n')
    monkeypatch.setenv("MONITOR_PG_PW", "p@ss word/9")
    cfg = load_config(path)
    assert cfg.store_target == "postgresql://mon:p%40ss%20word%2F9@db.internal:5433/monitor?sslmode=require"
    assert "p@ss word/9" in cfg.secrets
    assert "p@ss" not in cfg.store_label and "postgresql://" in cfg.store_label and "db.internal" in cfg.store_label
    assert "p@ss" not in repr(cfg)
    # Inline in the URL works too, and is just as secret; without url the SQLite file as before.
    inline = load_config(write(tmp_path, '[storage]\nurl = "postgresql://mon:inl1ne-pw@127.0.0.1/m"\n'))
    assert inline.store_target == "postgresql://mon:inl1ne-pw@127.0.0.1/m" and "inl1ne-pw" in inline.secrets
    plain = load_config(write(tmp_path, '[storage]\npath = "x.db"\n'))
    assert plain.store_target == plain.storage_path == tmp_path / "x.db"


def test_a_bad_storage_url_is_one_problem_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_PG_PW", raising=False)
    bad = write(tmp_path, '[storage]\nurl = "mysql://u@h/db"\n')
    with pytest.raises(ConfigError, match=r"monitor.toml:2: storage.url: must be a postgresql://"):
        load_config(bad)
    lonely = write(tmp_path, '[storage]\npassword = "x"\n')
    with pytest.raises(ConfigError, match=r"storage.password: is only used with storage.url"):
        load_config(lonely)
    unset = write(tmp_path, '[storage]\nurl = "postgresql://u@h/db"\npassword_env = "NOT_SET_PG_PW"\n')
    with pytest.raises(ConfigError, match=r"storage.password_env: environment variable NOT_SET_PG_PW is not set"):
        load_config(unset)
