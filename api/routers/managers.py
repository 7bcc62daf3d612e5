"""Manager workload and KPIs: ``GET /v1/managers``, ``GET /v1/managers/{id}`` (``?as_of=``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.auth import Viewer
from api.deps import ServicesDep
from api.params import key_cursor
from api.routers.projections import (
    NOT_FOUND,
    as_of_view,
    parse_as_of,
    view,
)
from api.validtime import ValidAt, list_at, valid_at_view

router = APIRouter(tags=["managers"])


@router.get("/v1/managers", summary="The manager pool, by id")
async def list_managers(
    roles: Viewer, services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    as_of: Annotated[str | None, Query(description="recording time, ISO 8601 (auditor): "
                                       "each item as GET /v1/managers/{id}?as_of= answers "
                                       "it; one that did not exist then is left out")] = None,
    valid_at: ValidAt = None,
) -> Response:
    svc = services.projections
    after = key_cursor(cursor)
    if as_of is not None or valid_at is not None:
        return await list_at(services, "manager", after, limit, valid_at, as_of, roles)
    return await view(services, f"managers:{after}:{limit}",
                      lambda: svc.manager_list(after, limit), "page", "")


@router.get("/v1/managers/{manager_id}", summary="A manager: active vs capacity, KPIs",
            responses=NOT_FOUND)
async def get_manager(
    manager_id: str, roles: Viewer, services: ServicesDep,
    as_of: Annotated[str | None, Query(description="recording time, ISO 8601 (auditor)")] = None,
    valid_at: ValidAt = None,
) -> Response:
    if valid_at is not None:
        return await valid_at_view(services, "manager", manager_id, valid_at, as_of, roles)
    at = parse_as_of(as_of, roles)
    if at is not None:
        return await as_of_view(services, "manager", manager_id, at)
    svc = services.projections
    return await view(services, f"manager:{manager_id}", lambda: svc.manager(manager_id),
                      "manager", manager_id)
