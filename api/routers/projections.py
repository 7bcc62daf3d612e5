"""``GET /v1/projections`` (status of each view), and what the view routers share.

View routes are ``async`` and answer from the projection service's byte cache
without leaving the event loop; only a cache miss goes to the thread pool to
query the projection store. Their role check is an async twin of
``api.auth.require`` (same key ring, same problems) because a sync dependency
costs a thread-pool hop on every request, which the read benchmark notices.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import Admin, KeyRing
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


def _roles(request: Request) -> set[str]:
    ring: KeyRing = request.app.state.keyring
    roles = ring.roles_of(request.headers.get("authorization"))
    if roles is None:
        raise Problem(401, "Unauthorized", "a valid 'Authorization: Bearer <api key>' "
                      "header is required")
    return roles


def _require(roles: set[str], role: str) -> None:
    if role not in roles:
        raise Problem(403, "Forbidden", f"this API key lacks the '{role}' role")


async def viewer_roles(request: Request) -> set[str]:
    """The caller's roles, once the caller is known to hold ``viewer``."""
    roles = _roles(request)
    _require(roles, "viewer")
    return roles


async def auditor_roles(request: Request) -> set[str]:
    roles = _roles(request)
    _require(roles, "auditor")
    return roles


async def services_of(request: Request) -> Services:
    """``api.deps.get_services`` for async routes: a sync dependency would cost a thread hop."""
    services: Services = request.app.state.services
    return services


ViewerRoles = Annotated[set[str], Depends(viewer_roles)]
FastServices = Annotated[Services, Depends(services_of)]
AuditorRoles = Annotated[set[str], Depends(auditor_roles)]


def parse_as_of(as_of: str | None, roles: set[str]) -> datetime | None:
    """The instant of ``?as_of=`` (ISO 8601 with an offset); reading the past needs ``auditor``."""
    if as_of is None:
        return None
    _require(roles, "auditor")
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


@router.get("/v1/projections", summary="Each projection: position, lag, last event, state")
def projection_status(_: ViewerRoles, services: ServicesDep) -> Response:
    return json_response(orjson.dumps({"items": status_items(services), "next_cursor": None}))


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
