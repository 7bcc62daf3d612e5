"""``GET /v1/projections`` (status of each view), and what the view routers share.

View routes are ``async`` and answer from the projection service's byte cache
without leaving the event loop; only a cache miss goes to the thread pool to
query the projection store. Role checks and services come from ``api.auth`` and
``api.deps``, whose dependencies are async: a sync one costs a thread-pool hop.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from api.auth import Admin, Viewer, require_role
from api.catchup import pipeline
from api.deps import Services, ServicesDep
from api.params import parse_instant
from api.problems import Problem

router = APIRouter(tags=["projections"])
JSON = "application/json"
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown id", "content": {"application/problem+json": {}}}}


def documented(example: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses of a view route: its JSON example, and the 404 problem."""
    return {200: {"description": "the view", "content": {JSON: {"example": example}}},
            **NOT_FOUND}


def parse_as_of(as_of: str | None, roles: set[str]) -> datetime | None:
    """The instant of ``?as_of=`` (ISO 8601 with an offset); reading the past needs ``auditor``."""
    if as_of is None:
        return None
    require_role(roles, "auditor")
    return parse_instant("as_of", as_of)  # in UTC: answers show UTC; PV counts days in UTC


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


# What a viewer reads in place of an error's text: exception messages can quote stored
# data, SQL and paths, which are for auditors, admins and the service log (where the
# runner writes them in full).
GENERIC_ERROR = "failing; the detail is shown to auditors and in the service log"


def redacted(value: Any) -> Any:
    """``value`` with the text of every ``error``-like field replaced by ``GENERIC_ERROR``."""
    if isinstance(value, dict):
        return {k: GENERIC_ERROR if k.endswith("error") and isinstance(v, str)
                else redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


@router.get("/v1/projections", summary="Each projection: watermark, lag, last event, state; "
            "and the pipeline's lag ahead of the views")
def projection_status(roles: Viewer, services: ServicesDep) -> Response:
    ahead = pipeline(services)  # before the views: see consumers.pipeline
    document = {"items": status_items(services), "next_cursor": None, "pipeline": ahead}
    if not roles & {"auditor", "admin"}:
        document = redacted(document)
    return json_response(orjson.dumps(document))


@router.post("/v1/projections/{name}/rebuild", status_code=202,
             summary="Rebuild one projection beside the live one, then swap it in",
             responses=NOT_FOUND)
def rebuild(name: str, _: Admin, services: ServicesDep) -> dict[str, Any]:
    if name not in services.projections.projections:
        raise Problem(404, "Not found", f"no projection '{name}'; use one of "
                      f"{', '.join(services.projections.names())}", kind="not-found")
    if services.runner is None:  # Kafka mode: its consumer rebuilds it from pmo.events
        services.projections.request_rebuild(name)
    else:
        services.runner.rebuild(name)
    return {"name": name, "state": "rebuilding"}
