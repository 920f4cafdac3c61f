"""Secrets never leave the process: not on stdout, stderr, in the debug log, or the database.

What is a secret is decided in one place, core/redact.py: URL user info,
query-string values, and the configured header values, SMTP password and
webhook URL path. The end-to-end test runs the real CLI (`python -m
monitor -v`) against a real webhook (pytest-httpserver) that refuses the
digest, a real feed server, and a feed on a closed port, then searches every
byte the user or a log collector could see.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from core.errors import ConfigError
from core.redact import redact_text
from monitor.config import load_config

FEED = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Loopback news</title><link>http://example.invalid/</link>
<item><title>Microsoft and OpenAI sign a new agreement</title><link>http://example.invalid/a1</link>
<guid>a1</guid><description>The partnership is revised.</description></item>
</channel></rss>
"""


@pytest.mark.parametrize(
    "text,expected",
    [
        ("https://user:pa55@host.example/feed?key=abc&q=x#top", "https://***@host.example/feed?key=***&q=***#top"),
        ('"POST /hooks/x?token=abc HTTP/1.1" 500', '"POST /hooks/x?token=*** HTTP/1.1" 500'),
        ("header value: ' Bearer abc.def'", "header value: ' Bearer ***'"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic ***"),
        ("password=hunter22 rest", "password=*** rest"),
        ("failed (http://h.example/f?key=abc): refused.", "failed (http://h.example/f?key=***): refused."),
        ("see http://h.example/f?a=1&b=2.", "see http://h.example/f?a=***&b=***."),
        # Near misses: text that must stay as it is.
        ("connection refused", "connection refused"),
        ("is it ? yes", "is it ? yes"),
        ("rule token NEAR/3 azure", "rule token NEAR/3 azure"),
        ("mailto:someone@example.org", "mailto:someone@example.org"),
    ],
)
def test_redaction_rules(text: str, expected: str) -> None:
    assert redact_text(text) == expected
    assert redact_text(expected) == expected  # idempotent


def test_registered_secrets_are_masked_in_every_form() -> None:
    secret = "tok en/with\nnewline"
    for shown in (secret, repr(secret), "tok%20en%2Fwith%0Anewline"):
        assert "***" in redact_text(f"error: {shown} end", [secret])
        assert "with" not in redact_text(f"error: {shown} end", [secret])


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "monitor.toml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(
    "headers,what",
    [
        ('Authorization = " Bearer s3cr3t-value"', "starts or ends with whitespace"),
        ('Authorization = """Bearer s3cr3t-value\nX-Evil: 1"""', "line break"),
        ('Authorization = "Bearer s3cr3t-value-\u0442\u043e\u043a\u0435\u043d"', "outside Latin-1"),
        ('"Bad Name" = "s3cr3t-value"', "not a valid HTTP header name"),
    ],
)
def test_bad_webhook_headers_are_refused_at_load_without_the_value(tmp_path: Path, headers: str, what: str) -> None:
    path = write(
        tmp_path,
        f'[digest.webhook]\nurl = "https://hooks.example/x"\n[digest.webhook.headers]\n{headers}\n',
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    (problem,) = err.value.problems
    assert problem.startswith(f"{path}:3: digest.webhook.headers.") and what in problem
    assert "s3cr3t" not in problem


def test_non_ascii_smtp_password_is_refused_at_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PW", "gehéim-passwort")
    path = write(
        tmp_path,
        '[digest.smtp]\nhost = "127.0.0.1"\nsender = "a@b.example"\nrecipients = ["c@d.example"]\n'
        'username = "monitor"\npassword_env = "SMTP_PW"\n',
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    (problem,) = err.value.problems
    assert problem.startswith(f"{path}:6: digest.smtp.password_env: the SMTP password contains non-ASCII")
    assert "gehéim" not in problem


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "-v", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_no_secret_reaches_output_logs_or_database(
    tmp_path: Path, httpserver: HTTPServer, subprocess_env: dict[str, str]
) -> None:
    hook_path = "/hooks/T0-hook-path-secret"
    hook_token = "hook-query-secret-42"
    header_secret = "Bearer header-secret-value-77"
    feed_key = "feed-api-key-secret-9"
    feed_password = "feed-userinfo-secret-3"
    httpserver.expect_request(hook_path, method="POST").respond_with_data("nope", status=500)
    httpserver.expect_request("/feed.xml").respond_with_data(FEED, content_type="application/rss+xml")
    good_feed = httpserver.url_for("/feed.xml") + f"?api_key={feed_key}"
    dead_feed = f"http://reader:{feed_password}@127.0.0.1:{closed_port()}/feed.xml?key={feed_key}"
    write(
        tmp_path,
        f"""[storage]
data_dir = "data"

[[feeds]]
url = "{good_feed}"
name = "Good"

[[feeds]]
url = "{dead_feed}"

[fetch]
timeout = 5

[digest.webhook]
url = "{httpserver.url_for(hook_path)}?token={hook_token}"
headers = {{ Authorization = "{header_secret}" }}
""",
    )
    outputs = []
    for args in (["poll"], ["digest", "--date", "2026-11-23", "--deliver"], ["status"], ["status", "--json"]):
        proc = run(subprocess_env, tmp_path, *args)
        assert "Traceback" not in proc.stderr, proc.stderr
        outputs.append(proc.stdout + proc.stderr)
    seen = "\n".join(outputs)
    # The run did what it should, so the absence of secrets means something:
    assert "connection refused" in seen  # the dead feed's error was reported
    assert "HTTP 500" in seen  # the webhook refused, and it was said
    # urllib3's DEBUG line ran, masked (the path and query are registered secrets).
    assert '"POST ***?*** HTTP/1.1" 500' in seen
    assert "?key=***): connection refused" in seen
    assert len(httpserver.log) >= 2  # the feed was fetched and the webhook called, with the real secrets
    hook_request = [r for r, _ in httpserver.log if r.path == hook_path][0]
    assert hook_request.headers["Authorization"] == header_secret and hook_request.args["token"] == hook_token

    for secret in (hook_path, hook_token, header_secret, "header-secret-value-77", feed_key, feed_password):
        assert secret not in seen, f"{secret!r} was printed:\n{seen}"
    # The database keeps feed URLs whole (it must fetch them); nothing else secret is stored.
    stored = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("monitor.db*"))
    for secret in (hook_path, hook_token, "header-secret-value-77"):
        assert secret.encode() not in stored, secret
    assert b"NOT delivered" not in stored  # sanity: status text is not what is stored
    status = outputs[2]
    assert "NOT delivered: webhook: webhook http://" in status and "HTTP 500" in status
