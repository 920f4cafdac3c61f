"""Digest delivery against real local servers: SMTP (aiosmtpd) and a webhook (pytest-httpserver).

The SMTP tests run an aiosmtpd Controller on 127.0.0.1: plain, with AUTH
LOGIN/PLAIN, with STARTTLS and with implicit TLS, using a self-signed
certificate made here with the openssl command (the `cryptography` package
is not installed in this project's environment). Every failure must come back
as a DeliveryError with one line that names the server and the cause.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.deliver import DeliveryError, SmtpSettings, WebhookSettings, post_webhook, send_email
from monitor.digest import DigestItem, build_digest, email_subject, render_html, render_json, render_markdown

SENDER = "Partnership monitor <monitor@digest.example>"
RECIPIENTS = ["analyst@digest.example", "editor@digest.example"]


# ------------------------------------------------------------------ helpers


def free_port() -> int:
    """A port nothing listens on (bound and released: connecting to it is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    """What the SMTP server received."""

    envelopes: list[Envelope] = field(default_factory=list)
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # (mechanism, user, password)
    refuse: set[str] = field(default_factory=set)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"

    def message(self) -> EmailMessage:
        (envelope,) = self.envelopes
        assert isinstance(envelope.content, bytes)
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


class Authenticator:
    def __init__(self, box: Mailbox, user: str = "monitor", password: str = "correct horse") -> None:
        self.box, self.user, self.password = box, user, password

    def __call__(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.box.logins.append((mechanism, login, password))
        return AuthResult(success=(login, password) == (self.user, self.password), handled=False)


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    """Start aiosmtpd Controllers on free ports; returns a factory (box, port)."""
    started: list[Controller] = []

    def start(**kw: Any) -> tuple[Mailbox, int]:
        box = kw.pop("box", None) or Mailbox()
        port = free_port()
        controller = Controller(box, hostname="127.0.0.1", port=port, **kw)
        controller.start()
        started.append(controller)
        return box, port

    yield start
    for controller in started:
        controller.stop()


@dataclass(frozen=True)
class Cert:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command, and the cryptography package is not installed: cannot make a test certificate")
    out = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(out / "key.pem"), "-out", str(out / "cert.pem"), "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True, capture_output=True, timeout=60,
    )
    return Cert(out / "cert.pem", out / "key.pem")


def digest_texts() -> tuple[str, str, str]:
    """Subject, text and HTML of a small real digest (non-ASCII on purpose)."""
    it = DigestItem(
        id=1, url="https://news.example/1", title="Microsoft–OpenAI: Vertrag überarbeitet", feed="Tech Ledger",
        published=datetime(2026, 11, 23, 8, 14, tzinfo=timezone.utc), score=6.0, tags=["partnership"],
        tag_scores={"partnership": 6.0}, matches=[], snippet_text="The revised agreement keeps Azure as the main cloud.",
    )
    d = build_digest(
        date(2026, 11, 23), ZoneInfo("Europe/Berlin"), [it], [], tag_order=["partnership"],
        generated_at=datetime(2026, 11, 24, 6, 0, tzinfo=timezone.utc),
    )
    return email_subject(d), render_markdown(d), render_html(d)


def settings(port: int, **kw: Any) -> SmtpSettings:
    base: dict[str, Any] = dict(host="127.0.0.1", port=port, sender=SENDER, recipients=list(RECIPIENTS), starttls=False, timeout=5)
    base.update(kw)
    return SmtpSettings(**base)


def one_line(exc: pytest.ExceptionInfo[DeliveryError]) -> str:
    message = str(exc.value)
    assert "\n" not in message and message.strip() == message and len(message) < 300
    return message


# ------------------------------------------------------------------ SMTP: what is sent


def test_email_is_multipart_alternative_with_text_and_html(smtp_server: Any) -> None:
    box, port = smtp_server()
    subject, text, html = digest_texts()
    text += ".a line that starts with a dot\nFrom the start of a line\n" + "long " * 300 + "\n"
    send_email(subject=subject, text=text, html=html, settings=settings(port))

    (envelope,) = box.envelopes
    assert envelope.mail_from == "monitor@digest.example"
    assert envelope.rcpt_tos == RECIPIENTS
    msg = box.message()
    assert msg["Subject"] == "Partnership digest 2026-11-23: 1 item"
    assert msg["From"] == SENDER
    assert [a.addr_spec for a in msg["To"].addresses] == RECIPIENTS
    assert msg["Message-ID"].endswith("@digest.example>")
    assert msg["Date"]
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    # Both bodies arrive as given (SMTP lines end in CRLF), dots, long lines and non-ASCII included.
    assert parts[0].get_content().replace("\r\n", "\n") == text
    assert parts[1].get_content().replace("\r\n", "\n") == html
    assert "Vertrag überarbeitet" in parts[0].get_content()
    raw = envelope.original_content
    assert isinstance(raw, bytes)
    # 7-bit clean with short lines, so any relay passes it on unchanged.
    assert raw.isascii() and all(len(line) <= 998 for line in raw.splitlines())


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
def test_login_with_each_mechanism(smtp_server: Any, mechanism: str) -> None:
    box = Mailbox()
    other = "PLAIN" if mechanism == "LOGIN" else "LOGIN"
    _, port = smtp_server(
        box=box, authenticator=Authenticator(box), auth_require_tls=False, auth_exclude_mechanism=[other]
    )
    subject, text, html = digest_texts()
    send_email(subject=subject, text=text, html=html, settings=settings(port, username="monitor", password="correct horse"))
    assert box.logins == [(mechanism, "monitor", "correct horse")]
    assert len(box.envelopes) == 1


def test_starttls_with_a_trusted_self_signed_certificate(smtp_server: Any, cert: Cert) -> None:
    box = Mailbox()
    _, port = smtp_server(
        box=box, tls_context=cert.server_context(), require_starttls=True, authenticator=Authenticator(box)
    )
    subject, text, html = digest_texts()
    send_email(
        subject=subject, text=text, html=html,
        settings=settings(port, starttls=True, ssl_context=cert.client_context(), username="monitor", password="correct horse"),
    )
    # The server only accepts AUTH and mail after STARTTLS (auth_require_tls, require_starttls): it got both.
    assert box.logins == [("PLAIN", "monitor", "correct horse")]
    assert box.message()["Subject"] == subject


def test_implicit_tls(smtp_server: Any, cert: Cert) -> None:
    box, port = smtp_server(ssl_context=cert.server_context())
    subject, text, html = digest_texts()
    send_email(subject=subject, text=text, html=html, settings=settings(port, ssl=True, ssl_context=cert.client_context()))
    assert box.message()["Subject"] == subject


# ------------------------------------------------------------------ SMTP: failures


def test_connection_refused(smtp_server: Any) -> None:
    port = free_port()
    with pytest.raises(DeliveryError) as exc:
        send_email(subject="s", text="t", html="<p>h</p>", settings=settings(port))
    assert one_line(exc) == f"SMTP 127.0.0.1:{port}: connection refused"


def test_wrong_password_is_rejected(smtp_server: Any) -> None:
    box = Mailbox()
    _, port = smtp_server(box=box, authenticator=Authenticator(box), auth_require_tls=False)
    with pytest.raises(DeliveryError) as exc:
        send_email(subject="s", text="t", html="<p>h</p>", settings=settings(port, username="monitor", password="wrong"))
    message = one_line(exc)
    assert message.startswith(f"SMTP 127.0.0.1:{port} rejected the login for monitor: 535")
    assert "wrong" not in message  # never the password
    assert box.envelopes == []


def test_server_without_starttls_when_starttls_is_required(smtp_server: Any) -> None:
    box, port = smtp_server()
    with pytest.raises(DeliveryError) as exc:
        send_email(subject="s", text="t", html="<p>h</p>", settings=settings(port, starttls=True, username="u", password="secret"))
    assert one_line(exc) == f"SMTP 127.0.0.1:{port} does not offer STARTTLS (set starttls = false to send in clear)"
    assert box.envelopes == []  # nothing, and no password, went out in clear


def test_starttls_with_an_untrusted_certificate(smtp_server: Any, cert: Cert) -> None:
    box, port = smtp_server(tls_context=cert.server_context())
    with pytest.raises(DeliveryError) as exc:
        # The system's trust store does not know our self-signed certificate.
        send_email(subject="s", text="t", html="<p>h</p>", settings=settings(port, starttls=True))
    assert one_line(exc).startswith(f"SMTP 127.0.0.1:{port}: TLS failed: CERTIFICATE_VERIFY_FAILED")
    assert box.envelopes == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_server_that_needs_login_when_none_is_configured(smtp_server: Any) -> None:
    box = Mailbox()
    _, port = smtp_server(box=box, authenticator=Authenticator(box), auth_require_tls=False, auth_required=True)
    with pytest.raises(DeliveryError) as exc:
        send_email(subject="s", text="t", html="<p>h</p>", settings=settings(port))
    assert one_line(exc).startswith(f"SMTP 127.0.0.1:{port}")
    assert "530" in str(exc.value)


def test_every_recipient_refused(smtp_server: Any) -> None:
    box, port = smtp_server(box=Mailbox(refuse=set(RECIPIENTS)))
    with pytest.raises(DeliveryError) as exc:
        send_email(subject="s", text="t", html="<p>h</p>", settings=settings(port))
    assert one_line(exc) == f"SMTP 127.0.0.1:{port} refused every recipient: analyst@digest.example, editor@digest.example"


def test_some_recipients_refused(smtp_server: Any) -> None:
    box, port = smtp_server(box=Mailbox(refuse={"editor@digest.example"}))
    with pytest.raises(DeliveryError) as exc:
        send_email(subject="s", text="t", html="<p>h</p>", settings=settings(port))
    assert one_line(exc) == f"SMTP 127.0.0.1:{port} refused recipients: editor@digest.example"
    assert box.envelopes[0].rcpt_tos == ["analyst@digest.example"]  # the others got it


def test_no_recipients() -> None:
    with pytest.raises(DeliveryError) as exc:
        send_email(subject="s", text="t", html="<p>h</p>", settings=settings(free_port(), recipients=[]))
    assert "no recipients" in one_line(exc)


# ------------------------------------------------------------------ webhook


def test_webhook_posts_the_json_with_its_headers(httpserver: HTTPServer) -> None:
    seen: list[Request] = []

    def hook(request: Request) -> Response:
        seen.append(request)
        return Response("accepted", status=202)

    httpserver.expect_request("/hooks/digest", method="POST").respond_with_handler(hook)
    _, text, _ = digest_texts()
    it_json = render_json(
        build_digest(date(2026, 11, 23), ZoneInfo("UTC"), [], [], tag_order=[], generated_at=datetime(2026, 11, 24, tzinfo=timezone.utc))
    ).replace('"items": []', '"items": [], "note": "Vertrag überarbeitet"')
    post_webhook(it_json, WebhookSettings(url=httpserver.url_for("/hooks/digest"), headers={"X-Digest-Token": "s3cret"}))
    (request,) = seen
    assert request.data == it_json.encode("utf-8")
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert request.headers["X-Digest-Token"] == "s3cret"
    assert request.get_json()["date"] == "2026-11-23"


def test_webhook_header_can_override_the_content_type(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/h", method="POST", headers={"Content-Type": "application/vnd.digest+json"}).respond_with_data("ok")
    post_webhook("{}", WebhookSettings(url=httpserver.url_for("/h"), headers={"Content-Type": "application/vnd.digest+json"}))
    httpserver.check_assertions()


@pytest.mark.parametrize(
    ("status", "expected"),
    [(500, "HTTP 500 INTERNAL SERVER ERROR"), (404, "HTTP 404 NOT FOUND"), (302, "HTTP 302 FOUND"), (401, "HTTP 401 UNAUTHORIZED")],
)
def test_webhook_non_2xx_is_a_failure(httpserver: HTTPServer, status: int, expected: str) -> None:
    headers = {"Location": httpserver.url_for("/elsewhere")} if status == 302 else {}
    httpserver.expect_request("/hooks/T0KEN-abc").respond_with_data("nope", status=status, headers=headers)
    httpserver.expect_request("/elsewhere").respond_with_data("ok")
    with pytest.raises(DeliveryError) as exc:
        post_webhook("{}", WebhookSettings(url=httpserver.url_for("/hooks/T0KEN-abc?key=s3cret")))
    message = one_line(exc)
    assert message.lower() == f"webhook http://{httpserver.host}:{httpserver.port}: {expected}".lower()
    assert "T0KEN" not in message and "s3cret" not in message  # the secret path never reaches logs or status


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_webhook_2xx_is_success(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_request("/h", method="POST").respond_with_data("", status=status)
    post_webhook("{}", WebhookSettings(url=httpserver.url_for("/h")))
    assert len(httpserver.log) == 1


def test_webhook_connection_refused() -> None:
    port = free_port()
    with pytest.raises(DeliveryError) as exc:
        post_webhook("{}", WebhookSettings(url=f"http://127.0.0.1:{port}/hooks/T0KEN", timeout=5))
    assert one_line(exc) == f"webhook http://127.0.0.1:{port}: connection refused"


def test_webhook_invalid_url() -> None:
    with pytest.raises(DeliveryError) as exc:
        post_webhook("{}", WebhookSettings(url="not a url"))
    assert one_line(exc).startswith("webhook (invalid URL): ")


# ------------------------------------------------------------------ secrets never echoed


def test_non_ascii_smtp_password_is_a_delivery_error_not_a_traceback(smtp_server: Any) -> None:
    # The config rejects it at load; a caller that builds settings itself still gets one line.
    box = Mailbox()
    _, port = smtp_server(box=box, authenticator=Authenticator(box), auth_require_tls=False)
    subject, text, html = digest_texts()
    secret = "pässwörd-Zürich"
    with pytest.raises(DeliveryError) as exc:
        send_email(subject=subject, text=text, html=html, settings=settings(port, username="monitor", password=secret))
    message = one_line(exc)
    assert message.startswith(f"SMTP 127.0.0.1:{port}: cannot encode")
    assert secret not in message and "Zürich" not in message
    assert box.envelopes == []


@pytest.mark.parametrize(
    "value",
    [" Bearer hunter2-leading-space", "Bearer hunter2\nX-Injected: 1", "Bearer hunter2-\u0442\u043e\u043a\u0435\u043d"],
)
def test_bad_header_values_are_refused_without_echoing_them(httpserver: HTTPServer, value: str) -> None:
    httpserver.expect_request("/h", method="POST").respond_with_data("", status=204)
    with pytest.raises(DeliveryError) as exc:
        post_webhook("{}", WebhookSettings(url=httpserver.url_for("/h"), headers={"Authorization": value}, timeout=5))
    message = one_line(exc)
    assert message.startswith("webhook http://localhost:") or message.startswith("webhook http://127.0.0.1:")
    assert "hunter2" not in message
    assert httpserver.log == []  # nothing half-sent


def test_invalid_webhook_url_does_not_echo_its_token() -> None:
    with pytest.raises(DeliveryError) as exc:
        post_webhook("{}", WebhookSettings(url="http://[::1/hooks/T0KEN-PATH?token=s3cr3t-t0ken", timeout=5))
    message = one_line(exc)
    assert "s3cr3t-t0ken" not in message and "T0KEN-PATH" not in message
