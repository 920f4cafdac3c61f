"""The one place secrets are taken out of text before it is shown, logged or stored.

What counts as a secret here, everywhere in the project:

- the user info of a URL (``https://user:pass@host/`` -> ``https://***@host/``);
- every value of a query string (``?token=abc&q=x`` -> ``?token=***&q=***``),
  in full URLs and in bare request paths (``POST /hook?token=abc``), because
  webhook and feed URLs carry API keys there;
- any string registered as a secret (webhook header values, the SMTP
  password, a webhook URL's path), wherever it appears, also percent-encoded.

Pure and dependency-free (a leaf module like the rest of ``core``): the
config registers the secrets it loads into a ``Redactor``; messages, log
records (``RedactingFilter``) and stored errors pass through it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote

MASK = "***"

# scheme://user[:password]@ — user info never contains '/', '?', '#', '@' or spaces.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s'\"<>]+@")
# A query string: '?' then key=value pairs up to a space, quote or fragment.
# A closing bracket or trailing punctuation is the sentence's, not the query's.
_QUERY = re.compile(r"\?([^\s'\"<>#)\]]*?)(?=[.,;:]*(?:[\s'\"<>#)\]]|$))")
# Authorization-style words followed by a credential, as some libraries echo them.
_AUTH_WORD = re.compile(
    r"(?i)\b(?:(bearer|basic)(\s+)|(authorization|token|api[_-]?key|secret|password|passwd)(\s*[=:]\s*)(?!(?:bearer|basic)\s))([^\s'\",;&]+)"
)

# Secrets shorter than this are not masked as free text: replacing every "a"
# or "1" in a message would make it unreadable and protect nothing.
_MIN_SECRET = 4


def _mask_query(m: re.Match[str]) -> str:
    pairs = m.group(1).split("&")
    out = []
    for pair in pairs:
        if not pair:
            out.append(pair)
            continue
        key, eq, _value = pair.partition("=")
        out.append(f"{key}={MASK}" if eq else MASK)
    return "?" + "&".join(out)


def _mask_auth(m: re.Match[str]) -> str:
    word, gap = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    return word + gap + MASK


def redact_url(url: str) -> str:
    """A URL fit to show: no user info, every query value masked."""
    return redact_text(url)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with URL user info, query values, credential-looking words and every
    given secret masked. Safe on any string; idempotent."""
    if not text:
        return text
    for secret in sorted({s for s in secrets if s and len(s.strip()) >= _MIN_SECRET}, key=len, reverse=True):
        for form in {secret, secret.strip(), quote(secret, safe=""), quote(secret.strip(), safe="/")}:
            if len(form) >= _MIN_SECRET:
                text = text.replace(form, MASK)
        # repr() of a value with a newline or quote shows it escaped.
        escaped = repr(secret)[1:-1]
        if escaped != secret and len(escaped) >= _MIN_SECRET:
            text = text.replace(escaped, MASK)
    text = _USERINFO.sub(lambda m: m.group(1) + MASK + "@", text)
    text = _QUERY.sub(_mask_query, text)
    text = _AUTH_WORD.sub(_mask_auth, text)
    return text


class Redactor:
    """Known secrets plus the fixed rules above; one instance per process."""

    def __init__(self, secrets: Iterable[str] = ()):
        self.secrets: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        self.secrets.update(s for s in secrets if s)

    def __call__(self, text: str) -> str:
        return redact_text(text, self.secrets)


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites each record's message through a Redactor.

    Installed on the handlers by the CLI, so every library's log line (urllib3
    prints request paths with their query at DEBUG) passes through it. The
    record's message is formatted once, redacted, and its args dropped."""

    def __init__(self, redactor: Redactor):
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error report
            return True
        record.msg = self.redactor(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            # Tracebacks end with str(exception), which may hold a header value or URL.
            record.exc_text = self.redactor(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
        return True
