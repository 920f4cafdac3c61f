"""Deliver a rendered digest: e-mail over SMTP, and a webhook POST of the JSON.

Thin adapters: they send what they are given and turn every failure into a
DeliveryError with one clear line. Deciding when to send, and retrying, is
the caller's business (monitor.service). They never retry, never log, and
never put a password or a webhook's secret path in a message.
"""

from __future__ import annotations

import email.policy
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from ssl import SSLContext
from urllib.parse import urlsplit

import requests

from core.errors import MonitorError
from core.redact import redact_text


class DeliveryError(MonitorError):
    """A digest could not be sent; the message is one line naming the server and the cause."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    sender: str
    recipients: list[str]
    port: int = 587
    starttls: bool = True
    ssl: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    # For tests and private relays with their own CA; None uses the system's.
    # (SSLContext is imported by name: the `ssl` field shadows the module here.)
    ssl_context: SSLContext | None = None


@dataclass(frozen=True)
class WebhookSettings:
    url: str
    timeout: float = 30.0
    headers: dict[str, str] = field(default_factory=dict)


def build_message(*, subject: str, text: str, html: str, settings: SmtpSettings) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = settings.sender
    msg["To"] = ", ".join(settings.recipients)
    msg["Date"] = formatdate(localtime=False)
    # The sender may be "Name <addr@host>": the id's domain is the address's host.
    address = parseaddr(settings.sender)[1]
    msg["Message-ID"] = make_msgid(domain=address.rpartition("@")[2] or None)
    # Quoted-printable: 7-bit clean for any relay, no line over 998 octets,
    # and still readable in the raw message.
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(html, subtype="html", cte="quoted-printable")
    return msg


def send_email(*, subject: str, text: str, html: str, settings: SmtpSettings) -> None:
    """Send the digest as multipart/alternative (text and HTML)."""
    where = f"{settings.host}:{settings.port}"
    if not settings.recipients:
        raise DeliveryError(f"SMTP {where}: no recipients to send the digest to")
    msg = build_message(subject=subject, text=text, html=html, settings=settings)
    context = settings.ssl_context or ssl.create_default_context()
    try:
        smtp: smtplib.SMTP
        if settings.ssl:
            smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=context)
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        with smtp:
            smtp.ehlo()
            if settings.starttls and not settings.ssl:
                if not smtp.has_extn("starttls"):
                    raise DeliveryError(f"SMTP {where} does not offer STARTTLS (set starttls = false to send in clear)")
                smtp.starttls(context=context)
                smtp.ehlo()
            if settings.username:
                smtp.login(settings.username, settings.password or "")
            # Flattened here, not by send_message: smtplib's generator would
            # turn every body line starting "From " into ">From ".
            data = msg.as_bytes(policy=email.policy.SMTP)
            sender = parseaddr(settings.sender)[1] or settings.sender
            refused = smtp.sendmail(sender, [parseaddr(r)[1] or r for r in settings.recipients], data)
            if refused:
                raise DeliveryError(f"SMTP {where} refused recipients: {', '.join(sorted(refused))}")
    except DeliveryError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(
            f"SMTP {where} rejected the login for {settings.username}: {_reply(exc.smtp_code, exc.smtp_error)}"
        ) from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(f"SMTP {where} refused every recipient: {', '.join(sorted(exc.recipients))}") from None
    except smtplib.SMTPSenderRefused as exc:
        raise DeliveryError(f"SMTP {where} refused the sender {exc.sender}: {_reply(exc.smtp_code, exc.smtp_error)}") from None
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(f"SMTP {where}: {_reply(exc.smtp_code, exc.smtp_error)}") from None
    except smtplib.SMTPException as exc:
        raise DeliveryError(f"SMTP {where}: {_clean(str(exc), settings.password)}") from None
    except ssl.SSLError as exc:
        raise DeliveryError(f"SMTP {where}: TLS failed: {exc.reason or exc}") from None
    except ConnectionRefusedError:
        raise DeliveryError(f"SMTP {where}: connection refused") from None
    except (socket.timeout, TimeoutError):
        raise DeliveryError(f"SMTP {where}: timed out after {settings.timeout:g} s") from None
    except OSError as exc:
        raise DeliveryError(f"SMTP {where}: {_clean(exc.strerror or str(exc), settings.password)}") from None
    except (UnicodeError, ValueError) as exc:
        # smtplib encodes AUTH and commands as ASCII; the config rejects such
        # passwords, but a sender or recipient can still fail here.
        raise DeliveryError(f"SMTP {where}: cannot encode the message or login: {type(exc).__name__}") from None


def _reply(code: int, message: bytes | str) -> str:
    """A server reply as one short line: `535 5.7.8 Authentication credentials invalid`."""
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return f"{code} {' '.join(text.split())}"[:200].rstrip()


def post_webhook(json_text: str, settings: WebhookSettings) -> None:
    """POST the JSON digest; any non-2xx answer is a failure."""
    headers = {"Content-Type": "application/json; charset=utf-8", **settings.headers}
    where = _site(settings.url)
    # requests echoes header values and the URL in its messages; none may leave here.
    secrets = [*settings.headers.values(), settings.url, urlsplit_safe_path(settings.url)]
    try:
        resp = requests.post(
            settings.url, data=json_text.encode("utf-8"), headers=headers, timeout=settings.timeout, allow_redirects=False
        )
    # ConnectTimeout is also a ConnectionError: catch timeouts first.
    except requests.exceptions.Timeout:
        raise DeliveryError(f"webhook {where}: timed out after {settings.timeout:g} s") from None
    except requests.exceptions.SSLError as exc:
        raise DeliveryError(f"webhook {where}: TLS failed: {_clean(str(exc), *secrets)}") from None
    except requests.exceptions.ConnectionError as exc:
        reason = "connection refused" if "refused" in str(exc) else "connection failed"
        raise DeliveryError(f"webhook {where}: {reason}") from None
    except requests.exceptions.RequestException as exc:
        raise DeliveryError(f"webhook {where}: {_clean(str(exc), *secrets) or type(exc).__name__}") from None
    except (UnicodeError, ValueError) as exc:
        # http.client encodes header values as Latin-1; the message would quote the value.
        raise DeliveryError(f"webhook {where}: cannot encode the request: {type(exc).__name__}") from None
    if not 200 <= resp.status_code < 300:
        raise DeliveryError(f"webhook {where}: HTTP {resp.status_code} {resp.reason or ''}".rstrip())


def _site(url: str) -> str:
    """scheme://host[:port] of a URL: webhook paths and queries often carry a secret
    token, and these messages end up in logs and `monitor status`."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(invalid URL)"
    return f"{parts.scheme}://{host}{port}" if parts.scheme and host else "(invalid URL)"


def urlsplit_safe_path(url: str) -> str:
    """The path of a URL ('' if unparsable or just '/'): hook services put the token there."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return ""
    return path if path not in ("", "/") else ""


def _clean(text: str, *secrets: str | None) -> str:
    """One line, secrets out (redacted before shortening, so no half-secret survives the cut)."""
    return " ".join(redact_text(text, [s for s in secrets if s]).split())[:200]
