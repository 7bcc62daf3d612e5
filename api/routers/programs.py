"""Program roll-up: ``GET /v1/programs/{id}`` (``?as_of=``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.auth import Viewer
from api.deps import ServicesDep
from api.routers.projections import (
    NOT_FOUND,
    as_of_view,
    parse_as_of,
    view,
)
from api.validtime import ValidAt, valid_at_view

router = APIRouter(tags=["programs"])


@router.get("/v1/programs/{program_id}", summary="A program's roll-up of its projects",
            responses=NOT_FOUND)
async def get_program(
    program_id: str, roles: Viewer, services: ServicesDep,
    as_of: Annotated[str | None, Query(description="recording time, ISO 8601 (auditor)")] = None,
    valid_at: ValidAt = None,
) -> Response:
    if valid_at is not None:
        return await valid_at_view(services, "program", program_id, valid_at, as_of, roles)
    at = parse_as_of(as_of, roles)
    if at is not None:
        return await as_of_view(services, "program", program_id, at)
    svc = services.projections
    return await view(services, f"program:{program_id}", lambda: svc.program(program_id),
                      "program", program_id)
