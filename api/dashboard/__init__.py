"""The dashboard page (CONTRACT section 16): ``/``, its assets, ``/v1/whoami``, ``/v1/stream``.

The page and its assets are plain files shipped in the package (``static/``: no CDN, no
build step) and need no key; every figure the page shows comes from the JSON API, called
with the key the user typed, which the page keeps in ``sessionStorage`` only.
"""

from __future__ import annotations

from importlib import resources
from types import SimpleNamespace

import orjson
from fastapi import APIRouter, FastAPI, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from api.auth import IMPLIED, AnyKey
from api.dashboard import stream
from api.routers.projections import json_response

STATIC = resources.files("api.dashboard") / "static"
# The page loads only its own files, so a script injected through data could not send the
# key anywhere else; inline SVG charts are built through the DOM.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")

router = APIRouter()


@router.get("/", include_in_schema=False)
async def index() -> Response:
    body = (STATIC / "index.html").read_bytes()
    return Response(body, media_type="text/html; charset=utf-8", headers={
        "Content-Security-Policy": CSP, "Cache-Control": "no-cache",
        "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"})


@router.get("/v1/whoami", tags=["dashboard"], summary="The roles of the calling key")
async def whoami(roles: AnyKey) -> Response:
    return json_response(orjson.dumps({"roles": sorted(roles),
                                       "known_roles": sorted(IMPLIED)}))


class Assets:
    """The static files, counted in ``/metrics`` under one route rather than 'unmatched'."""

    route = SimpleNamespace(path="/dashboard/static/{file}")

    def __init__(self) -> None:
        self.files = StaticFiles(directory=str(STATIC))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self.route  # read by api.metrics.RequestMetrics
        await self.files(scope, receive, send)


def install(app: FastAPI) -> None:
    """Adds the page, its assets under ``/dashboard/static/`` and the two routes it needs."""
    app.include_router(router)
    app.include_router(stream.router)
    app.mount("/dashboard/static", Assets(), name="dashboard")


__all__ = ["install"]
