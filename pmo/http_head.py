"""A bound on the request head (request line and headers) that ``pmo serve`` reads.

uvicorn's C parser (httptools) has none: measured on ``pmo serve``, one anonymous
request with a 50 MB header was read whole and answered (200 on ``/v1/portfolios``,
before any key is checked, so no key is needed), and six of 100 MB each left the API
process holding 330 MB more than before. The body has its limit (``PMO_MAX_BODY_BYTES``);
the head now has one too: over ``PMO_MAX_HEADER_BYTES`` the answer is 431 (RFC 6585) as
problem+json, and the connection is closed without reading the rest.

Two checks, one limit: the bytes of a head still being read (so a head that never ends
holds at most the limit plus one read of the socket), and the size of the head once
parsed (URL, header names and values), so a head that arrives in one read is judged by
the same rule as one that trickles in. The second is summed once per request when the
head is complete, not in a callback per header: wrapping uvicorn's per-header callback
cost 3.7 µs a request (about 5% of the cached-view read rate).
"""

from __future__ import annotations

import asyncio

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.problems import problem_body

STATUS = 431
TITLE = "Request header fields too large"


class HeadTooLarge(Exception):
    """Raised from a parser callback: httptools stops parsing the message there."""


def _problem(status: int, title: str, kind: str, detail: str, **extra: int) -> bytes:
    """A whole problem+json answer that closes the connection, as bytes: it is written
    before any ASGI app is involved."""
    body = orjson.dumps(problem_body(status, title, detail, kind) | extra)
    return (f"HTTP/1.1 {status} {title}\r\ncontent-type: application/problem+json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


def refusal(limit: int) -> bytes:
    return _problem(STATUS, TITLE, "request-header-fields-too-large",
                    f"the request line and headers are over the {limit}-byte limit "
                    "(PMO_MAX_HEADER_BYTES)", limit=limit)


# What uvicorn answers as text/plain when the parser refuses a request (a control character
# in a header, an unknown method, a bad request line): every error is problem+json.
UNPARSABLE = _problem(400, "Bad request", "bad-request",
                      "not an HTTP/1.1 request this server can read (request line or headers)")


def bounded_protocol(limit: int) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol, refusing a request head over ``limit`` bytes, and
    answering a request it cannot parse with a problem, not uvicorn's text/plain."""
    answer = refusal(limit)

    class BoundedHead(HttpToolsProtocol):
        _in_head = True  # the first request of a connection starts with its head
        _head_read = 0  # bytes received while a head was being read
        _refused = False

        def data_received(self, data: bytes) -> None:
            if self._in_head:
                self._head_read += len(data)
            super().data_received(data)
            if self._in_head and self._head_read > limit:
                self._refuse()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head = True
            self._head_read = 0

        def on_headers_complete(self) -> None:
            self._in_head = False
            size = len(self.url)
            for name, value in self.headers:
                size += len(name) + len(value)
            if size > limit:
                self._refused = True
                raise HeadTooLarge  # uvicorn answers the parser's error: send_400_response
            super().on_headers_complete()

        def send_400_response(self, msg: str) -> None:
            if self._refused:
                self._refuse()
            elif not self.transport.is_closing():
                self.transport.write(UNPARSABLE)
                self.transport.close()

        def _refuse(self) -> None:
            if not self.transport.is_closing():
                self.transport.write(answer)
                self.transport.close()

    return BoundedHead
