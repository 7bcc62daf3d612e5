"""HTTP edges every route shares (CONTRACT section 10, "Errors"; section 4's ids).

- **Ids travel percent-encoded.** Servers decode ``%2F`` before routing, so
  ``/v1/projects/ACME%2FPRJ-1`` would reach no route and ``.../A%2Fhistory`` the
  history of ``A``. ``Edges`` rebuilds the routed path from the raw one, one
  segment at a time, keeping ``/`` and ``%`` inside a segment escaped; every
  route's ``{param}`` is then decoded by ``unescape_path_params``, a dependency of
  the whole app (so routers added later are covered too). So an id
  holding ``/``, space, ``%``, ``?``, ``#`` or any non-ASCII character is reached
  by its percent-encoding, and sub-routes (``/history``) keep working.
- **HEAD works where GET does**: answered as the GET, without the body.
- **A NUL** (``%00``) can be in no id and no parameter (PostgreSQL cannot even
  compare it): 404 in the path, 422 in the query, before any store sees it.
- 405 carries ``Allow`` (with HEAD beside GET): see ``api.problems``.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem_response

HEAD_KEY = "pmo.head"  # in the scope of a HEAD answered as its GET


async def unescape_path_params(request: Request) -> None:
    """An app-wide dependency: FastAPI solves it before it reads the route's own path
    parameters, so each one arrives decoded (``Edges`` kept ``/`` and ``%`` escaped)."""
    params = request.scope.get("path_params")
    if params:
        for name, value in params.items():
            if isinstance(value, str) and "%" in value:
                params[name] = unquote(value)


def routed_path(raw_path: bytes) -> str:
    """The path as routes see it: each segment decoded, save ``%`` and ``/`` in it."""
    segments = raw_path.decode("latin-1").split("/")
    return "/".join(quote(unquote(s, errors="replace"), safe=_SAFE) for s in segments)


# Printable ASCII but the two characters that would change how a path splits or decodes
# (``quote`` escapes everything else, non-ASCII as UTF-8; ``unescape_path_params`` decodes).
_SAFE = "".join(chr(c) for c in range(33, 127) if chr(c) not in "%/")


class Edges:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Without raw_path (the ASGI spec makes it optional) the decoded path is all there
        # is: its '%' are kept literal, its '/' stay separators.
        raw = scope.get("raw_path") or quote(scope["path"], safe="/" + _SAFE).encode()
        if b"%00" in raw or "\x00" in scope["path"]:
            await self._refuse(scope, receive, send, 404, "Not found",
                               "no resource has a NUL character in its id", "not-found")
            return
        if b"%00" in scope.get("query_string", b""):
            await self._refuse(scope, receive, send, 422, "Invalid request",
                               "a NUL character is not allowed in a query parameter",
                               "invalid-request")
            return
        if b"%" in raw:  # else the server's decoded path is the raw one already
            scope = {**scope, "path": routed_path(raw)}
        if scope["method"] == "HEAD":
            # HEAD_KEY tells a route whose GET never ends (the live stream) that no body
            # is wanted, so it answers its headers and returns.
            scope = {**scope, "method": "GET", HEAD_KEY: True}
            send = _without_body(send)
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, title: str,
                      detail: str, kind: str) -> None:
        response = problem_response(status, title, detail, kind)
        if scope["method"] == "HEAD":
            send = _without_body(send)
        await response(scope, receive, send)


def _without_body(send: Send) -> Send:
    async def head_send(message: Message) -> None:
        if message["type"] == "http.response.body":
            if message.get("more_body", False):
                return  # a stream's chunks: none is sent, the last one ends the answer
            message = {"type": "http.response.body", "body": b""}
        await send(message)
    return head_send

