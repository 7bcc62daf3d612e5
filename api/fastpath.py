"""The hot read path: a current, cached view answered before FastAPI's routing.

Dashboards poll ``GET /v1/portfolios/{id}`` (and project, program, manager) far
more often than the views change. The projection service keeps each view as
ready JSON bytes under a token that moves whenever a projection commits; when
the bytes are current, routing, dependency resolution and the response
machinery cost several times what sending them does (measured by
``bench/bench_read.py``). So this pure ASGI layer answers exactly one case
itself: a GET without a query string, of one view by id, by a key holding
``viewer``, whose bytes are cached and current. Everything else (a miss, a
404, ``as_of``, a missing or wrong key) falls through to the FastAPI route,
which builds and caches the view and answers errors as problems: the route
stays the only definition of the behaviour, this layer only skips work.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import KeyRing
from api.deps import Services
from projections.service import VIEW_KEY_PREFIX

# ``/v1/<collection>/{id}`` -> the projection service's cache key prefix for that view.
VIEWS = VIEW_KEY_PREFIX
_TEMPLATE = re.compile(r"^/v1/(portfolios|projects|programs|managers)/\{[a-z_]+\}$")


class CachedViews:
    def __init__(self, app: ASGIApp, services: Services, keyring: KeyRing,
                 routes: list[BaseRoute]) -> None:
        self.app = app
        self.services = services
        self.keyring = keyring
        # Only views whose route exists; the route object labels metrics as FastAPI would.
        self.routes: dict[str, tuple[str, Any]] = {}
        for route in routes:
            match = _TEMPLATE.match(getattr(route, "path", ""))
            if match and "GET" in (getattr(route, "methods", None) or ()):
                self.routes[f"/v1/{match.group(1)}/"] = (VIEWS[match.group(1)], route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope["query_string"]:
            body = self._current(scope)
            if body is not None:
                await send({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _current(self, scope: Scope) -> bytes | None:
        path: str = scope["path"]
        prefix, _, ident = path.rpartition("/")
        ident = unquote(ident)  # kept escaped by api.edges.Edges
        view = self.routes.get(prefix + "/")
        if view is None or not ident:
            return None
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is not None:
                    return None  # given twice: the route answers 401 (api.auth)
                authorization = value.decode("latin-1")
        roles = self.keyring.roles_of(authorization)
        if roles is None or "viewer" not in roles:
            return None
        hit, body = self.services.projections.peek(view[0] + ident)
        if hit and body is not None:
            scope["route"] = view[1]  # metrics count it under the route's template
            return body
        return None
