"""The FastAPI application, built from ``Services`` by the composition root (never at import)."""

from __future__ import annotations

import threading

from fastapi import Depends, FastAPI

from api import dashboard, openapi, problems
from api.auth import KeyRing
from api.consistency import ReadAfter
from api.deps import Services
from api.edges import Edges, unescape_path_params
from api.fastpath import CachedViews
from api.limits import BodyLimit
from api.metrics import Metrics, RequestMetrics
from api.routers import (
    audit,
    events,
    health,
    history,
    managers,
    portfolios,
    programs,
    projections,
    projects,
    quarantine,
    receipts,
    rejections,
    schemas,
)

# One router per resource (each module exposes ``router``), in the order OpenAPI lists them.
ROUTERS = (events, history, portfolios, projects, programs, managers, audit, rejections,
           projections, quarantine, health, receipts, schemas)
VIEW_ROUTERS = (portfolios, projects, programs, managers, audit)

DESCRIPTION = """\
Event-sourced portfolio tracking for PMOs. Publishers `POST /v1/events` (CloudEvents 1.0);
dashboards read views under `/v1/`; auditors replay history, read any past state with
`?as_of=` and verify the hash chain. Every error is RFC 9457 `application/problem+json`.

Authenticate with `Authorization: Bearer <api key>`; keys and their roles come from
`PMO_API_KEYS`.
"""


def create_app(services: Services) -> FastAPI:
    app = FastAPI(title="pmo-ledger", version="0.1.0", description=DESCRIPTION,
                  docs_url=None, redoc_url=None,  # served offline by api.openapi
                  openapi_tags=[{"name": "events", "description": "publish what happened"},
                                {"name": "history", "description": "stored events, for audit"},
                                {"name": "operations", "description": "probes and metrics"}],
                  dependencies=[Depends(unescape_path_params)])
    app.state.services = services
    # Serialises submits to the ingestor (see api.routers.events); shared by every app of
    # these services, as the ingestor is.
    services.extras.setdefault("ingest_lock", threading.Lock())
    app.state.keyring = KeyRing(services.settings.api_keys)
    app.state.metrics = Metrics()
    problems.install(app)
    openapi.install(app)
    routes = []
    for module in ROUTERS:
        # View routes take min_position (and wait on as_of): api.consistency.
        waits = [ReadAfter] if module in VIEW_ROUTERS else []
        app.include_router(module.router, dependencies=waits)
        routes += module.router.routes
    dashboard.install(app)  # the page at /, its assets, /v1/whoami and /v1/stream
    # Added innermost first: metrics see every answer, the body limit's 413 and the
    # cached views included.
    app.add_middleware(CachedViews, services=services, keyring=app.state.keyring,
                       routes=routes)
    app.add_middleware(BodyLimit, max_bytes=services.settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    # Outermost: ids percent-encoded in paths, HEAD, NUL (see api.edges). No redirect to
    # the path with(out) a trailing slash: it would be built from a foreign Host header.
    app.router.redirect_slashes = False
    app.add_middleware(Edges)
    return app
