"""The request head has a bound on a real ``pmo serve`` (pmo.http_head): over
PMO_MAX_HEADER_BYTES it is 431 problem+json and the connection closes; a head under it
is served, whatever the size of the body that follows."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import portfolio, read_until_closed
from tests.e2e.test_cli import KEYS, serving

LIMIT = 16 * 1024
# What a head carries besides the URL, names and values the limit counts (request
# line, ": " and CRLFs): a head this far under the limit is surely served.
SLACK = 2048


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp: Path = tmp_path_factory.mktemp("head")
    with serving(tmp, PMO_API_KEYS=KEYS, PMO_MAX_HEADER_BYTES=str(LIMIT)) as (base, _):
        yield int(base.rsplit(":", 1)[1])


def exchange(port: int, *parts: bytes) -> tuple[bytes, bool]:
    """Send ``parts`` (stopping if the server closes), then read all it answers;
    True if it closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with contextlib.suppress(OSError):  # closed by the server mid-send: as a refusal does
            for part in parts:
                sock.sendall(part)
        return read_until_closed(sock, timeout_s=3)


def head(path: bytes = b"/v1/portfolios", headers: list[bytes] | None = None,
         end: bool = True) -> bytes:
    lines = [b"GET " + path + b" HTTP/1.1", b"Host: 127.0.0.1", b"Authorization: Bearer k",
             *(headers or [])]
    return b"\r\n".join(lines) + (b"\r\n\r\n" if end else b"\r\n")


def assert_431(data: bytes, closed: bool) -> None:
    status_line, _, rest = data.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 431 Request header fields too large", data[:200]
    head_, _, body = rest.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head_.lower()
    problem = orjson.loads(body)
    assert problem["status"] == 431 and problem["limit"] == LIMIT and problem["title"]
    assert problem["type"].startswith("https://")
    assert closed
    assert data.count(b"HTTP/1.1 ") == 1


def test_one_huge_header_is_431_and_closes(port: int) -> None:
    assert_431(*exchange(port, head(headers=[b"X-Big: " + b"a" * (LIMIT * 8)])))


def test_a_head_that_never_ends_is_refused_before_it_is_read_whole(port: int) -> None:
    # 64 times the limit, never terminated: the answer comes while it is still being sent.
    start = head(headers=[b"X-Endless: "], end=False)[:-2]
    assert_431(*exchange(port, start, *[b"a" * LIMIT] * 64))


def test_a_url_over_the_limit_is_431(port: int) -> None:
    assert_431(*exchange(port, head(path=b"/v1/projects?q=" + b"a" * (LIMIT + 1))))


@settings(max_examples=12, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(count=st.integers(1, 400), size=st.integers(0, 600))
def test_many_headers_are_judged_by_their_total(port: int, count: int, size: int) -> None:
    headers = [b"X-H%d: %s" % (n, b"v" * size) for n in range(count)]
    # Connection: close, or a served example waits out exchange's 3 s read timeout.
    data, closed = exchange(port, head(headers=[*headers, b"Connection: close"]))
    total = sum(len(h) for h in headers)
    if total > LIMIT:
        assert_431(data, closed)
    elif total < LIMIT - SLACK:
        assert data.startswith(b"HTTP/1.1 200 "), data[:200]


def test_a_body_over_the_head_limit_is_not_counted_and_the_next_request_is_served(
        port: int) -> None:
    """Keep-alive: a small head, a body four times the head limit, then a second request."""
    body = orjson.dumps([portfolio(f"PF-{n}") | {"pad": "x" * 2000} for n in range(30)])
    assert len(body) > 4 * LIMIT
    post = (b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer k\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body))
    data, _ = exchange(port, post + head(headers=[b"Connection: close"]))
    assert data.startswith(b"HTTP/1.1 200 "), data[:300]
    assert data.count(b"HTTP/1.1 200 ") == 2, data[:300]


@pytest.mark.parametrize("request_", [
    b"GET /v1/portfolios HTTP/1.1\r\nHost: x\r\nAccept: \x01\r\n\r\n",
    b"FOO /v1/portfolios HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v1/portfolios HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"GET /v1/portfolios HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello on the plain port
])
def test_a_request_the_parser_refuses_is_a_400_problem(port: int, request_: bytes) -> None:
    data, closed = exchange(port, request_)
    status_line, _, rest = data.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 400 Bad request", data[:200]
    head_, _, body = rest.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head_.lower()
    assert orjson.loads(body)["status"] == 400
    assert closed
