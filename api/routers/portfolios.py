"""Portfolio views: ``GET /v1/portfolios`` and ``GET /v1/portfolios/{id}`` (``?as_of=``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.routers.projections import (
    NOT_FOUND,
    FastServices,
    ViewerRoles,
    as_of_view,
    parse_as_of,
    view,
)

router = APIRouter(tags=["portfolios"])


@router.get("/v1/portfolios", summary="Every portfolio's view, by id")
async def list_portfolios(
    _: ViewerRoles, services: FastServices,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> Response:
    svc = services.projections
    return await view(services, f"portfolios:{cursor}:{limit}",
                      lambda: svc.portfolio_list(cursor, limit), "page", "")


@router.get("/v1/portfolios/{portfolio_id}", summary="A portfolio: counts, money, CPI/SPI",
            responses=NOT_FOUND)
async def get_portfolio(
    portfolio_id: str, roles: ViewerRoles, services: FastServices,
    as_of: Annotated[str | None, Query(description="recording time, ISO 8601 (auditor)")] = None,
) -> Response:
    at = parse_as_of(as_of, roles)
    if at is not None:
        return await as_of_view(services, "portfolio", portfolio_id, at)
    svc = services.projections
    return await view(services, f"portfolio:{portfolio_id}",
                      lambda: svc.portfolio(portfolio_id), "portfolio", portfolio_id)
