"""Probes and metrics: answered without a key, as orchestrators and Prometheus expect."""

from __future__ import annotations

import socket
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from api.catchup import pipeline
from api.deps import Services, ServicesDep
from api.metrics import TEXT_FORMAT, Metrics
from api.problems import Problem
from api.routers.projections import status_items

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:  # no I/O: stays on the event loop
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the stores (and, in Kafka mode, the broker) answer",
            responses={503: {"description": "a dependency does not answer",
                             "content": {"application/problem+json": {}}}})
def readyz(services: ServicesDep) -> dict[str, Any]:
    checks: dict[str, str] = {}
    failures: list[str] = []
    for name, probe in (("event_store", _event_store), ("projection_store", _projection_store),
                        ("broker", _broker)):
        try:
            outcome = probe(services)
        except Exception as e:  # any failure means "not ready"; the reason is reported
            outcome = f"error: {type(e).__name__}: {e}"
            failures.append(name)
        if outcome is not None:
            checks[name] = outcome
    if failures:
        raise Problem(503, "Not ready", f"not answering: {', '.join(failures)}",
                      kind="not-ready", checks=checks)
    return {"status": "ready", "checks": checks}


def _event_store(services: Services) -> str:
    services.app.recorder.max_notification_id()
    return "ok"


def _projection_store(services: Services) -> str:
    services.projections.db.query("SELECT 1")
    return "ok"


def _broker(services: Services) -> str | None:
    if not services.settings.kafka_mode:
        return None
    ping = getattr(services.ingest, "ping", None)
    if callable(ping):  # an ingestor that can ask the broker itself knows best
        ping()
        return "ok"
    # Otherwise: a bootstrap server accepts a connection (what a client does first).
    errors = []
    for server in (services.settings.kafka_bootstrap or "").split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port or 9092)), timeout=1).close()
            return "ok"
        except OSError as e:
            errors.append(f"{server}: {e}")
    raise ConnectionError("; ".join(errors))


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {}}}})
def metrics(services: ServicesDep, request: Request) -> PlainTextResponse:
    registry: Metrics = request.app.state.metrics
    try:  # the pipeline before the views: see consumers.pipeline
        ahead: dict[str, Any] | None = pipeline(services)
    except Exception:  # metrics must still answer when the broker is down: gauges left out
        ahead = None
    try:
        projections = status_items(services)
    except Exception:  # likewise when a view store is down; readyz says why
        projections = []
    return PlainTextResponse(registry.render(projections, ahead), media_type=TEXT_FORMAT)
