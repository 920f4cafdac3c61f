"""monitor.fetch against real HTTP servers on 127.0.0.1.

pytest-httpserver covers ordinary answers (status codes, headers,
redirects, gzip); a small threaded http.server and raw sockets cover what
it cannot: a body trickled forever, a server that never answers, a count
of requests in flight at once. Time limits are small FetchSettings; the
only clock checks are generous upper bounds proving a fetch did not hang.
"""

from __future__ import annotations

import gzip
import socket
import threading
import tracemalloc
import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.fetch import ACCEPT, DEFAULT_USER_AGENT, Fetcher, FetchResult, FetchSettings, retry_after_seconds

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=timezone.utc)
FEED = b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Wire</title></channel></rss>'


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(FetchSettings(connect_timeout=2, read_timeout=2, total_timeout=5, max_redirects=5)) as f:
        yield f


def fetch(f: Fetcher, url: str, **kw: str) -> FetchResult:
    return f.fetch(url, now=NOW, **kw)


def fetch_or_hang(f: Fetcher, url: str, limit: float = 15) -> FetchResult:
    """Fetch in a helper thread; fail (not hang the suite) if it is still stuck after `limit` seconds."""
    box: list[FetchResult] = []
    worker = threading.Thread(target=lambda: box.append(fetch(f, url)), daemon=True)
    worker.start()
    worker.join(limit)
    assert box, f"fetch of {url} still running after {limit} s: the deadline did not hold"
    return box[0]


def assert_one_line(result: FetchResult) -> None:
    assert result.error and "\n" not in result.error and len(result.error) < 300, result.error


# --- ordinary answers ---------------------------------------------------------------------------


def test_200_keeps_validators_then_conditional_get_answers_304_without_body(
    httpserver: HTTPServer, fetcher: Fetcher
) -> None:
    lm = "Tue, 24 Nov 2026 08:00:00 GMT"
    httpserver.expect_ordered_request("/feed").respond_with_data(
        FEED, content_type="application/rss+xml", headers={"ETag": '"abc-1"', "Last-Modified": lm}
    )
    httpserver.expect_ordered_request(
        "/feed", headers={"If-None-Match": '"abc-1"', "If-Modified-Since": lm}
    ).respond_with_data("", status=304, headers={"ETag": '"abc-1"'})
    url = httpserver.url_for("/feed")

    first = fetch(fetcher, url)
    assert (first.status, first.body, first.error, first.not_modified) == (200, FEED, None, False)
    assert (first.etag, first.last_modified) == ('"abc-1"', lm)
    assert first.content_type == "application/rss+xml"

    second = fetch(fetcher, url, etag=first.etag or "", last_modified=first.last_modified or "")
    assert (second.status, second.not_modified, second.body, second.error) == (304, True, None, None)
    httpserver.check_assertions()


def test_first_fetch_sends_no_conditional_headers(httpserver: HTTPServer, fetcher: Fetcher) -> None:
    httpserver.expect_request("/feed").respond_with_data(FEED)
    fetch(fetcher, httpserver.url_for("/feed"))
    sent = httpserver.log[0][0].headers
    assert "If-None-Match" not in sent and "If-Modified-Since" not in sent


def test_user_agent_and_accept_headers_are_sent(httpserver: HTTPServer, fetcher: Fetcher) -> None:
    httpserver.expect_request("/feed").respond_with_data(FEED)
    fetch(fetcher, httpserver.url_for("/feed"))
    sent = httpserver.log[0][0].headers
    assert sent["User-Agent"] == DEFAULT_USER_AGENT
    assert sent["Accept"] == ACCEPT
    assert "application/rss+xml" in sent["Accept"] and "application/feed+json" in sent["Accept"]
    assert "gzip" in sent["Accept-Encoding"]


def test_custom_user_agent_is_used(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed", headers={"User-Agent": "tester/1.0"}).respond_with_data(FEED)
    with Fetcher(FetchSettings(user_agent="tester/1.0")) as f:
        assert fetch(f, httpserver.url_for("/feed")).body == FEED


# --- redirects ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "permanent"),
    [
        ([301], True),
        ([308], True),
        ([301, 308], True),
        ([302], False),
        ([307], False),
        ([303], False),
        ([301, 302], False),  # a temporary hop anywhere makes the move temporary
        ([302, 301], False),
    ],
)
def test_redirects_followed_and_only_all_permanent_chains_move_the_feed(
    httpserver: HTTPServer, fetcher: Fetcher, codes: list[int], permanent: bool
) -> None:
    for i, code in enumerate(codes):
        httpserver.expect_request(f"/hop{i}").respond_with_data("", status=code, headers={"Location": f"/hop{i + 1}"})
    final = httpserver.url_for(f"/hop{len(codes)}")
    httpserver.expect_request(f"/hop{len(codes)}").respond_with_data(FEED)

    result = fetch(fetcher, httpserver.url_for("/hop0"))
    assert (result.status, result.body, result.error) == (200, FEED, None)
    assert result.final_url == final
    assert result.permanent_url == (final if permanent else None)


def test_redirect_carries_conditional_headers_to_the_new_location(httpserver: HTTPServer, fetcher: Fetcher) -> None:
    httpserver.expect_request("/old").respond_with_data("", status=301, headers={"Location": "/new"})
    httpserver.expect_request("/new", headers={"If-None-Match": '"v9"'}).respond_with_data("", status=304)
    result = fetch(fetcher, httpserver.url_for("/old"), etag='"v9"')
    assert result.not_modified and result.permanent_url == httpserver.url_for("/new")


def test_redirect_loop_is_reported(httpserver: HTTPServer, fetcher: Fetcher) -> None:
    httpserver.expect_request("/a").respond_with_data("", status=302, headers={"Location": "/b"})
    httpserver.expect_request("/b").respond_with_data("", status=302, headers={"Location": "/a"})
    result = fetch(fetcher, httpserver.url_for("/a"))
    assert result.body is None and result.error is not None
    assert result.error.startswith("redirect loop")
    assert_one_line(result)
    assert len(httpserver.log) == 2


def test_too_many_redirects(httpserver: HTTPServer) -> None:
    for i in range(10):
        httpserver.expect_request(f"/r{i}").respond_with_data("", status=301, headers={"Location": f"/r{i + 1}"})
    with Fetcher(FetchSettings(max_redirects=3)) as f:
        result = fetch(f, httpserver.url_for("/r0"))
    assert result.error == "too many redirects (more than 3)"
    assert result.body is None and result.permanent_url is None
    assert len(httpserver.log) == 4  # the first request and three redirects, then it stops


def test_exactly_max_redirects_is_allowed(httpserver: HTTPServer) -> None:
    for i in range(3):
        httpserver.expect_request(f"/r{i}").respond_with_data("", status=301, headers={"Location": f"/r{i + 1}"})
    httpserver.expect_request("/r3").respond_with_data(FEED)
    with Fetcher(FetchSettings(max_redirects=3)) as f:
        result = fetch(f, httpserver.url_for("/r0"))
    assert (result.body, result.error) == (FEED, None)


# --- HTTP errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "gone"),
    [
        (404, "HTTP 404 NOT FOUND", False),
        (500, "HTTP 500 INTERNAL SERVER ERROR", False),
        (403, "HTTP 403 FORBIDDEN", False),
        (410, "HTTP 410 Gone: the publisher removed this feed", True),
    ],
)
def test_http_errors_are_results_not_exceptions(
    httpserver: HTTPServer, fetcher: Fetcher, status: int, error: str, gone: bool
) -> None:
    httpserver.expect_request("/feed").respond_with_data("<h1>nope</h1>", status=status, content_type="text/html")
    result = fetch(fetcher, httpserver.url_for("/feed"))
    assert (result.status, result.error, result.gone, result.body, result.retry_after) == (status, error, gone, None, None)
    assert_one_line(result)


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        (format_datetime(NOW + timedelta(minutes=5), usegmt=True), 300.0),
        (format_datetime(NOW - timedelta(minutes=5), usegmt=True), 0.0),  # already passed: retry now
        ("soon", None),
        (None, None),
    ],
)
def test_429_and_503_honour_retry_after(
    httpserver: HTTPServer, fetcher: Fetcher, status: int, header: str | None, seconds: float | None
) -> None:
    headers = {"Retry-After": header} if header is not None else {}
    httpserver.expect_request("/feed").respond_with_data("slow down", status=status, headers=headers)
    result = fetch(fetcher, httpserver.url_for("/feed"))
    assert (result.status, result.retry_after, result.body) == (status, seconds, None)
    assert result.error is not None and result.error.startswith(f"HTTP {status}")
    assert_one_line(result)


def test_retry_after_on_other_statuses_is_ignored(httpserver: HTTPServer, fetcher: Fetcher) -> None:
    httpserver.expect_request("/feed").respond_with_data("", status=500, headers={"Retry-After": "60"})
    assert fetch(fetcher, httpserver.url_for("/feed")).retry_after is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("3600", 3600.0),
        ("Tue, 24 Nov 2026 09:31:00 GMT", 60.0),
        ("Tuesday, 24-Nov-26 09:32:00 GMT", 120.0),  # the obsolete RFC 850 form
        ("-5", None),
        ("1.5", None),
        ("", None),
        ("not a date", None),
    ],
)
def test_retry_after_seconds_table(value: str, seconds: float | None) -> None:
    assert retry_after_seconds(value, NOW) == seconds


# --- network trouble ----------------------------------------------------------------------------


def test_connection_refused_is_one_line(fetcher: Fetcher) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    result = fetch(fetcher, f"http://127.0.0.1:{port}/feed")
    assert (result.error, result.status, result.body) == ("connection refused", None, None)


def test_invalid_url_is_one_line(fetcher: Fetcher) -> None:
    result = fetch(fetcher, "feed.example/rss")
    assert result.error is not None and result.error.startswith("invalid URL")
    assert_one_line(result)


def test_server_that_accepts_and_never_answers_times_out() -> None:
    # The kernel completes the handshake for a listening socket; nobody ever reads or answers.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        with Fetcher(FetchSettings(connect_timeout=1, read_timeout=0.5, total_timeout=2)) as f:
            result = fetch_or_hang(f, f"http://127.0.0.1:{silent.getsockname()[1]}/feed")
    finally:
        silent.close()
    assert result.error == "no answer within 0.5 s (read timed out)"
    assert result.status is None and result.body is None


class _Server:
    """A threaded http.server on 127.0.0.1 with a handler class of the test's choosing."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/feed") -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # frees handler threads still trickling


def test_trickling_body_is_abandoned_at_the_total_timeout(stop: threading.Event) -> None:
    class Trickle(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.end_headers()
            self.wfile.write(b"<?xml version='1.0'?><rss>")
            self.wfile.flush()
            # A byte every 0.2 s, forever: each read succeeds, so only the total deadline can end it.
            while not stop.wait(0.2):
                try:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                except OSError:
                    return

        def log_message(self, *args: object) -> None:
            pass

    server = _Server(Trickle)
    try:
        with Fetcher(FetchSettings(connect_timeout=1, read_timeout=1, total_timeout=1.5)) as f:
            result = fetch_or_hang(f, server.url())
    finally:
        stop.set()
        server.close()
    assert result.error == "download not finished within 1.5 s (server too slow); abandoned"
    assert result.body is None and result.status == 200
    assert 0 < result.bytes_received < 200


def test_trickling_headers_are_abandoned_at_the_total_timeout(stop: threading.Event) -> None:
    class TrickleHeaders(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            self.wfile.flush()
            # Header lines that never end: every read gets a byte, so the read timeout never fires.
            while not stop.wait(0.2):
                try:
                    self.wfile.write(b"X")
                    self.wfile.flush()
                except OSError:
                    return

        def log_message(self, *args: object) -> None:
            pass

    server = _Server(TrickleHeaders)
    try:
        with Fetcher(FetchSettings(connect_timeout=1, read_timeout=1, total_timeout=1.5)) as f:
            result = fetch_or_hang(f, server.url())
    finally:
        stop.set()
        server.close()
    # Cut off mid-headers, http.client may still have made a (bogus) status of them.
    assert result.error is not None and result.error.endswith("within 1.5 s (server too slow); abandoned")
    assert result.body is None


def test_server_closing_mid_body_is_one_line(stop: threading.Event) -> None:
    class Cut(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "5000")
            self.end_headers()
            self.wfile.write(b"<rss>" * 10)
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    server = _Server(Cut)
    try:
        with Fetcher(FetchSettings(connect_timeout=1, read_timeout=1, total_timeout=3)) as f:
            result = fetch(f, server.url())
    finally:
        server.close()
    assert result.body is None and result.error is not None
    assert result.error.startswith("connection broken while downloading"), result.error
    assert_one_line(result)


# --- size cap and gzip --------------------------------------------------------------------------


def test_body_over_the_cap_with_content_length_is_not_downloaded(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/big").respond_with_data(b"x" * 5000)
    with Fetcher(FetchSettings(max_bytes=1000)) as f:
        result = fetch(f, httpserver.url_for("/big"))
    assert result.error == "response larger than 0.001 MB (0.005 MB announced); not downloaded"
    assert result.body is None and result.bytes_received == 0


def test_body_over_the_cap_without_content_length_is_abandoned_while_streaming(httpserver: HTTPServer) -> None:
    sent = []

    def endless(request: Request) -> Response:
        def chunks() -> Iterator[bytes]:
            for _ in range(2000):  # 20 MB if anyone read it all
                sent.append(1)
                yield b"y" * 10_000

        return Response(chunks(), content_type="application/rss+xml")  # no length: chunked

    httpserver.expect_request("/big").respond_with_handler(endless)
    with Fetcher(FetchSettings(max_bytes=100_000)) as f:
        result = fetch(f, httpserver.url_for("/big"))
    assert result.error == "response larger than 0.1 MB; abandoned while downloading"
    assert result.body is None
    assert 100_000 < result.bytes_received <= 100_000 + 65536
    assert "Content-Length" not in httpserver.log[0][1].headers


def test_body_exactly_at_the_cap_is_kept(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed").respond_with_data(b"z" * 1000)
    with Fetcher(FetchSettings(max_bytes=1000)) as f:
        result = fetch(f, httpserver.url_for("/feed"))
    assert (result.error, result.body) == (None, b"z" * 1000)


def test_gzip_body_is_decoded(httpserver: HTTPServer, fetcher: Fetcher) -> None:
    body = FEED * 200
    httpserver.expect_request("/feed").respond_with_data(
        gzip.compress(body), headers={"Content-Encoding": "gzip"}, content_type="application/rss+xml"
    )
    result = fetch(fetcher, httpserver.url_for("/feed"))
    assert (result.error, result.body) == (None, body)
    assert result.bytes_received == len(body)  # the cap counts decoded bytes


def test_deflate_body_is_decoded(httpserver: HTTPServer, fetcher: Fetcher) -> None:
    httpserver.expect_request("/feed").respond_with_data(zlib.compress(FEED), headers={"Content-Encoding": "deflate"})
    assert fetch(fetcher, httpserver.url_for("/feed")).body == FEED


def test_corrupt_gzip_is_one_line(httpserver: HTTPServer, fetcher: Fetcher) -> None:
    httpserver.expect_request("/feed").respond_with_data(b"\x1f\x8b\x08\x00garbage-not-deflate" * 10, headers={"Content-Encoding": "gzip"})
    result = fetch(fetcher, httpserver.url_for("/feed"))
    assert result.body is None and result.error is not None
    assert result.error.startswith("corrupt compressed body"), result.error
    assert_one_line(result)


def _gzipped_zeros(size: int) -> bytes:
    # Compressed piecewise so the test itself never holds the inflated size.
    out = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1_000_000)
    parts = [out.compress(block) for _ in range(size // len(block))]
    parts.append(out.flush())
    return b"".join(parts)


def test_gzip_bomb_is_cut_off_by_the_cap_in_bounded_memory(httpserver: HTTPServer) -> None:
    bomb = _gzipped_zeros(50_000_000)
    assert len(bomb) < 200_000
    httpserver.expect_request("/bomb").respond_with_data(
        bomb, headers={"Content-Encoding": "gzip"}, content_type="application/rss+xml"
    )
    with Fetcher(FetchSettings(max_bytes=1_000_000)) as f:
        tracemalloc.start()
        try:
            result = fetch(f, httpserver.url_for("/bomb"))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert result.error == "response larger than 1 MB; abandoned while downloading"
    assert result.body is None
    assert result.bytes_received <= 1_000_000 + 65536
    assert peak < 30_000_000, f"peak {peak / 1e6:.1f} MB while fetching a 50 MB bomb"


# --- concurrency --------------------------------------------------------------------------------


def test_per_host_limit_bounds_requests_in_flight(stop: threading.Event) -> None:
    lock = threading.Condition()
    state = {"in_flight": 0, "max": 0, "served": 0}

    class Counting(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with lock:
                state["in_flight"] += 1
                state["max"] = max(state["max"], state["in_flight"])
                lock.notify_all()
                # Hold until a second request is in flight too (or give up): if the limit
                # leaked, the extra requests would arrive while these two are held.
                lock.wait_for(lambda: state["in_flight"] >= 2 or stop.is_set(), timeout=2)
            stop.wait(0.15)
            with lock:
                state["in_flight"] -= 1
                state["served"] += 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(FEED)))
            self.end_headers()
            self.wfile.write(FEED)

        def log_message(self, *args: object) -> None:
            pass

    server = _Server(Counting)
    results: list[FetchResult] = []
    try:
        with Fetcher(FetchSettings(per_host=2, total_timeout=20, read_timeout=10)) as f:
            threads = [
                threading.Thread(target=lambda i=i: results.append(fetch(f, server.url(f"/feed{i}")))) for i in range(6)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
    finally:
        stop.set()
        server.close()
    assert [r.error for r in results] == [None] * 6
    assert state["served"] == 6
    assert state["max"] == 2
