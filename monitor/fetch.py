"""Fetch feeds over HTTP (requests): the only module that touches the network.

Polite and bounded: a clear User-Agent, conditional GET (ETag and
Last-Modified), gzip, redirects followed by hand (so permanent moves, loops
and long chains are seen), a per-host concurrency limit, connect and read
timeouts plus a total deadline per fetch (a server that trickles bytes
cannot hold a worker), and a cap on the decoded size, enforced while
streaming (a decompression bomb is abandoned, never loaded whole).

`Fetcher.fetch` never raises for network or HTTP trouble: the FetchResult
says what happened. It does not parse, and it does not decide what a
failure means for the feed (monitor.decide does).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from core.redact import redact_text

DEFAULT_USER_AGENT = "partnership-monitor/0.1 (feed monitor; +https://pypi.org/project/partnership-monitor/)"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
_CHUNK = 65536


@dataclass(frozen=True)
class FetchSettings:
    user_agent: str = DEFAULT_USER_AGENT
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 30.0
    max_bytes: int = 10_000_000
    max_redirects: int = 5
    per_host: int = 4
    pool_size: int = 16


@dataclass
class FetchResult:
    url: str
    final_url: str
    permanent_url: str | None = None
    status: int | None = None
    body: bytes | None = None
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False
    gone: bool = False
    retry_after: float | None = None
    error: str | None = None
    elapsed: float = 0.0
    bytes_received: int = 0


class _Abandon(Exception):
    """Stop reading this response (cap or deadline); carries the user-facing reason."""


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())


class _Watch:
    """The total deadline of one fetch, enforced from outside the reading thread.

    Socket timeouts bound each read, not their sum: a server that sends a
    header byte every few seconds never trips them, and requests reads the
    status line and headers before it hands us anything. So a timer shuts
    the fetch's sockets down when the deadline passes; the blocked read then
    fails at once and the fetch reports the deadline.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline: float | None = None
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.expired = False
        self.finished = False
        self.timer: threading.Timer | None = None

    def start(self) -> None:
        """Start the clock (once; later calls keep the first deadline)."""
        if self.deadline is not None:
            return
        self.deadline = time.monotonic() + self.seconds
        self.timer = threading.Timer(self.seconds, self.expire)
        self.timer.daemon = True
        self.timer.start()

    def remaining(self) -> float:
        return self.seconds if self.deadline is None else self.deadline - time.monotonic()

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self.lock:
            if self.expired:
                _shutdown(sock)
            elif not any(s is sock for s in self.sockets):
                self.sockets.append(sock)

    def expire(self) -> None:
        with self.lock:
            if self.finished:
                return
            self.expired = True
            for sock in self.sockets:
                _shutdown(sock)

    def finish(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        with self.lock:
            self.finished = True
            self.sockets.clear()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


# The fetch running in this thread: connections made or reused here report
# their socket to it (urllib3 opens them in the calling thread).
_current = threading.local()


def _watch_socket(sock: socket.socket | None) -> None:
    watch: _Watch | None = getattr(_current, "watch", None)
    if watch is not None:
        watch.watch(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watch_socket(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        _watch_socket(self.sock)  # a kept-alive connection being reused
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watch_socket(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        _watch_socket(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


def _mb(n: int) -> str:
    return f"{n / 1_000_000:g} MB"


class Fetcher:
    """One pooled requests.Session shared by the poll's worker threads."""

    def __init__(self, settings: FetchSettings = FetchSettings()):
        self.settings = settings
        self.session = requests.Session()
        adapter = _WatchedAdapter(pool_connections=settings.pool_size, pool_maxsize=settings.pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update(
            {"User-Agent": settings.user_agent, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"}
        )
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._hosts_lock = threading.Lock()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def _host_slot(self, url: str) -> threading.BoundedSemaphore:
        host = (urlsplit(url).hostname or "").lower()
        with self._hosts_lock:
            sem = self._hosts.get(host)
            if sem is None:
                sem = self._hosts[host] = threading.BoundedSemaphore(self.settings.per_host)
            return sem

    def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        now: datetime,
        accept: str | None = None,
    ) -> FetchResult:
        """GET a feed (or, with `accept`, another document). Never raises for network or HTTP trouble; see FetchResult.error.

        The total time limit runs from the moment this fetch gets its slot
        for the host: waiting behind other feeds of a busy host is not the
        server being slow.
        """
        s = self.settings
        start = time.monotonic()
        result = FetchResult(url=url, final_url=url)
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        if accept:
            headers["Accept"] = accept
        watch = _Watch(s.total_timeout)
        _current.watch = watch
        try:
            self._follow(url, headers, result, watch, now)
        except _Abandon as exc:
            result.error = str(exc)
        except requests.exceptions.ConnectTimeout:
            result.error = f"connection timed out after {s.connect_timeout:g} s"
        except requests.exceptions.ReadTimeout:
            result.error = f"no answer within {min(s.read_timeout, s.total_timeout):g} s (read timed out)"
        except requests.exceptions.SSLError as exc:
            result.error = f"TLS error: {_first_line(exc)}"
        except requests.exceptions.ConnectionError as exc:
            result.error = _connection_error(exc)
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema) as exc:
            result.error = f"invalid URL: {_first_line(exc)}"
        except requests.exceptions.RequestException as exc:
            result.error = f"request failed: {_first_line(exc)}"
        finally:
            watch.finish()
            _current.watch = None
        if result.error is not None:
            result.body = None
            if watch.expired:
                # Whatever the cut-off socket raised, the cause is the deadline.
                stage = "download not finished" if result.status is not None else "no complete answer"
                result.error = f"{stage} within {s.total_timeout:g} s (server too slow); abandoned"
            # Stored on the feed row and logged: library messages quote URLs with their credentials.
            result.error = redact_text(result.error, [p for p in (_password_of(url),) if p])
        return self._done(result, start)

    def _follow(self, url: str, headers: dict[str, str], result: FetchResult, watch: _Watch, now: datetime) -> None:
        """Request `url`, following redirects by hand; fills `result` or raises."""
        s = self.settings
        current, permanent, visited = url, True, {url}
        for _hop in range(s.max_redirects + 1):
            with self._host_slot(current):
                watch.start()
                remaining = watch.remaining()
                if remaining <= 0:
                    raise _Abandon(f"no complete answer within {s.total_timeout:g} s (server too slow); abandoned")
                resp = self.session.get(
                    current,
                    headers=headers,
                    stream=True,
                    allow_redirects=False,
                    timeout=(min(s.connect_timeout, remaining), min(s.read_timeout, remaining)),
                )
                try:
                    location = resp.headers.get("Location")
                    if resp.status_code in (301, 302, 303, 307, 308) and location:
                        nxt = urljoin(current, location.strip())
                        if urlsplit(nxt).scheme.lower() not in ("http", "https"):
                            result.status = resp.status_code
                            raise _Abandon(f"redirect to a non-HTTP URL refused ({nxt[:200]})")
                        permanent = permanent and resp.status_code in (301, 308)
                        if nxt in visited:
                            result.status = resp.status_code
                            raise _Abandon(f"redirect loop ({current} -> {nxt})")
                        visited.add(nxt)
                        current = nxt
                        continue
                    result.final_url = current
                    if current != url and permanent:
                        result.permanent_url = current
                    self._read(resp, result, watch, now)
                    return
                finally:
                    _release(resp, watch)
        raise _Abandon(f"too many redirects (more than {s.max_redirects})")

    def _done(self, result: FetchResult, start: float) -> FetchResult:
        result.elapsed = time.monotonic() - start
        return result

    def _read(self, resp: requests.Response, result: FetchResult, watch: _Watch, now: datetime) -> None:
        s = self.settings
        result.status = resp.status_code
        result.content_type = resp.headers.get("Content-Type")
        result.etag = resp.headers.get("ETag")
        result.last_modified = resp.headers.get("Last-Modified")
        code = resp.status_code
        if code == 304:
            result.not_modified = True
            return
        if code == 410:
            result.gone = True
            result.error = "HTTP 410 Gone: the publisher removed this feed"
            return
        if code in (429, 503):
            result.retry_after = retry_after_seconds(resp.headers.get("Retry-After"), now)
        if code >= 400 or code < 200:
            result.error = f"HTTP {code} {resp.reason or ''}".rstrip()
            if result.retry_after is not None:
                result.error += f" (retry after {result.retry_after:.0f} s)"
            return
        declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > s.max_bytes and not resp.headers.get("Content-Encoding"):
            raise _Abandon(f"response larger than {_mb(s.max_bytes)} ({_mb(int(declared))} announced); not downloaded")
        chunks: list[bytes] = []
        size = 0
        raw = resp.raw
        while True:
            remaining = watch.remaining()
            if remaining <= 0 or watch.expired:
                raise _Abandon(f"download not finished within {s.total_timeout:g} s (server too slow); abandoned")
            _limit_socket_wait(raw, min(remaining, s.read_timeout))
            try:
                chunk = raw.read1(_CHUNK, decode_content=True)
            except Exception as exc:  # urllib3 read errors: timeouts, broken connections, bad gzip
                raise _Abandon(_read_error(exc, s)) from None
            if not chunk:
                if raw.closed or not raw.readable() or _finished(raw):
                    break
                continue
            size += len(chunk)
            result.bytes_received = size
            if size > s.max_bytes:
                raise _Abandon(f"response larger than {_mb(s.max_bytes)}; abandoned while downloading")
            chunks.append(chunk)
        if watch.expired:
            # The deadline timer shut the socket: that end of data is not the end of the body.
            raise _Abandon(f"download not finished within {s.total_timeout:g} s (server too slow); abandoned")
        result.body = b"".join(chunks)


_DRAIN = 65536


def _release(resp: requests.Response, watch: _Watch) -> None:
    """Hand the connection back to the pool when its response was read to the end, else close it.

    Keeping it is what lets the next feed of the host skip the TCP (and TLS)
    handshake. A small unread body (a redirect's, an error page's) is read
    off first; anything else, or a fetch cut off by its deadline, closes the
    connection as before.
    """
    raw = resp.raw
    try:
        if not watch.expired and raw is not None and not raw.closed:
            left = raw.length_remaining
            if left is not None and 0 < left <= _DRAIN:
                raw.drain_conn()
                left = raw.length_remaining
            if left == 0 or (left is None and _finished(raw)):
                raw.release_conn()
                return
    except Exception:  # a broken connection while draining: just close it
        pass
    resp.close()


def _finished(raw: Any) -> bool:
    # urllib3 returns b"" from read1 only at the end of the body (or when a
    # decoder needs more input, which another read provides).
    fp = getattr(raw, "_fp", None)
    return fp is None or getattr(fp, "fp", None) is None or raw.length_remaining == 0


def _limit_socket_wait(raw: Any, seconds: float) -> None:
    """Make the next socket read wait at most `seconds`, so the deadline holds mid-body."""
    conn = getattr(raw, "_connection", None)
    sock = getattr(conn, "sock", None)
    if sock is not None:
        try:
            sock.settimeout(max(0.05, seconds))
        except OSError:
            pass


def _password_of(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _connection_error(exc: BaseException) -> str:
    text = str(exc)
    if "Connection refused" in text or "ECONNREFUSED" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo failed" in text:
        return "host name not found (DNS)"
    if "timed out" in text:
        return "connection timed out"
    if "RemoteDisconnected" in text or "Connection aborted" in text or "reset by peer" in text:
        return "the server closed the connection without an answer"
    return f"connection failed: {_first_line(exc)}"


def _read_error(exc: BaseException, s: FetchSettings) -> str:
    text = str(exc)
    name = type(exc).__name__
    if "timed out" in text or "Timeout" in name:
        return f"the server stopped sending (no data for {min(s.read_timeout, s.total_timeout):g} s)"
    if "decompress" in text.lower() or "Decode" in name:
        return f"corrupt compressed body: {_first_line(exc)}"
    return f"connection broken while downloading: {_first_line(exc)}"
