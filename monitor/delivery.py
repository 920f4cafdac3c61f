"""Delivery routing: send a rendered digest or an alert by every configured channel.

Decides which channels (e-mail, webhook) from the config and turns each
failure into one line; the adapters that talk SMTP and HTTP are in
monitor/deliver.py. Never retries: a failed digest delivery is recorded by
the digest job and retried by the next run.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from html import escape
from typing import Any

from core.errors import MonitorError
from core.redact import redact_text
from monitor import deliver as dv
from monitor.config import Config
from monitor.digest.render import Rendered

log = logging.getLogger("monitor")

NOTHING_CONFIGURED = "no delivery is configured (set [digest.smtp] or [digest.webhook] in the config)"


def delivery_configured(config: Config) -> bool:
    return config.digest.smtp is not None or config.digest.webhook_url is not None


def deliver_digest(config: Config, day: date, rendered: Rendered) -> str | None:
    """Send a digest, as rendered for the files, by every configured channel; None, or the failures as one line."""
    error = _send(
        config,
        subject=rendered.subject,
        text=rendered.markdown,
        html=rendered.email_html,
        json_text=rendered.json,
    )
    if error:
        log.error("digest %s not delivered: %s", day, error)
    return error


def deliver_alert(config: Config, line: str, detail: dict[str, Any]) -> str | None:
    return _send(
        config,
        subject=line[:200],
        text=line + "\n",
        html=f"<p>{escape(line)}</p>",
        json_text=json.dumps({"alert": detail}, ensure_ascii=False),
    )


def _send(config: Config, *, subject: str, text: str, html: str, json_text: str) -> str | None:
    """E-mail and/or webhook, as configured. Returns None, or every failure in one line."""
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
        except Exception as exc:  # a delivery bug must still land in delivery_error, not lose the record
            log.exception("unexpected error while sending the digest by e-mail")
            errors.append(f"email: unexpected {type(exc).__name__}")
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
        except Exception as exc:  # as above
            log.exception("unexpected error while posting the digest to the webhook")
            errors.append(f"webhook: unexpected {type(exc).__name__}")
    # Stored in digests.delivery_error and shown by `monitor status`: no secret may survive.
    return redact_text("; ".join(errors), config.secrets) or None
