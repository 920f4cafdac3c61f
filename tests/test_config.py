"""Configuration: defaults, where the file comes from, relative paths, and every problem at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import DEFAULT_FEEDS, load_config, locate_key, parse_duration
from core.errors import ConfigError


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
    assert "feeds[2].url: is missing" in text
    assert f"{path}:15: digest.timezone:" in text
    assert f"{path}:16: digest.time:" in text
    assert len(problems) == 7


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[fetch]\nconcurrency = = 3\n")
    with pytest.raises(ConfigError, match=r"monitor.toml: invalid TOML: .*line 2"):
        load_config(path)


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
