"""``GET /v1/projections`` (status of each view), and what the view routers share.

View routes are ``async`` and answer from the projection service's byte cache
without leaving the event loop; only a cache miss goes to the thread pool to
query the projection store. Role checks and services come from ``api.auth`` and
``api.deps``, whose dependencies are async: a sync one costs a thread-pool hop.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from api.auth import Admin, Viewer, require_role
from api.catchup import pipeline
from api.deps import Services, ServicesDep
from api.problems import Problem

router = APIRouter(tags=["projections"])
JSON = "application/json"
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown id", "content": {"application/problem+json": {}}}}


def documented(example: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses of a view route: its JSON example, and the 404 problem."""
    return {200: {"description": "the view", "content": {JSON: {"example": example}}},
            **NOT_FOUND}


def position_cursor(cursor: str | None) -> int:
    """The position a ``next_cursor`` of an append-only list (audit, rejections) stands for."""
    if cursor is not None and not cursor.isdigit():
        raise Problem(422, "Invalid request", "cursor: not a cursor this route gave out",
                      kind="invalid-request")
    return int(cursor or 0)


def parse_as_of(as_of: str | None, roles: set[str]) -> datetime | None:
    """The instant of ``?as_of=`` (ISO 8601 with an offset); reading the past needs ``auditor``."""
    if as_of is None:
        return None
    require_role(roles, "auditor")
    try:
        instant = datetime.fromisoformat(as_of)
    except ValueError:
        raise Problem(422, "Invalid request", f"as_of: not an ISO 8601 instant: {as_of!r}",
                      kind="invalid-request") from None
    if instant.utcoffset() is None:
        raise Problem(422, "Invalid request", "as_of: give a UTC offset, e.g. "
                      "2026-03-01T12:00:00Z", kind="invalid-request")
    return instant.astimezone(UTC)  # answers show UTC; PV counts days in UTC


def json_response(body: bytes) -> Response:
    return Response(content=body, media_type=JSON)


async def view(services: Services, key: str, build: Callable[[], bytes | None],
               what: str, ident: str) -> Response:
    """The cached bytes of view ``key`` (built in the thread pool on a miss), or a 404 problem."""
    hit, body = services.projections.peek(key)
    if not hit:
        body = await run_in_threadpool(build)
    if body is None:
        raise Problem(404, "Not found", f"no {what} '{ident}'", kind="not-found")
    return json_response(body)


async def as_of_view(services: Services, kind: str, ident: str, at: datetime) -> Response:
    body = await run_in_threadpool(services.projections.as_of, services.app, kind, ident, at)
    if body is None:
        raise Problem(404, "Not found", f"no {kind} '{ident}' was recorded by "
                      f"{at.isoformat()}", kind="not-found")
    return json_response(body)


def status_items(services: Services) -> list[dict[str, Any]]:
    if services.runner is not None:
        return services.runner.status()
    return services.projections.status(services.app.recorder.max_notification_id() or 0)


@router.get("/v1/projections", summary="Each projection: watermark, lag, last event, state; "
            "and the pipeline's lag ahead of the views")
def projection_status(_: Viewer, services: ServicesDep) -> Response:
    return json_response(orjson.dumps({"items": status_items(services), "next_cursor": None,
                                       "pipeline": pipeline(services)}))


@router.post("/v1/projections/{name}/rebuild", status_code=202,
             summary="Rebuild one projection from the event store (embedded mode)",
             responses=NOT_FOUND)
def rebuild(name: str, _: Admin, services: ServicesDep) -> dict[str, Any]:
    if name not in services.projections.projections:
        raise Problem(404, "Not found", f"no projection '{name}'; use one of "
                      f"{', '.join(services.projections.names())}", kind="not-found")
    if services.runner is None:
        raise Problem(409, "Not available", "in Kafka mode rebuild with "
                      "'pmo replay --projection NAME' and restart its consumer",
                      kind="not-available")
    services.runner.rebuild(name)
    return {"name": name, "state": "rebuilding"}
