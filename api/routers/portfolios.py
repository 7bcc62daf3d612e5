"""Portfolio views: ``GET /v1/portfolios``, ``GET /v1/portfolios/{id}`` (``?as_of=``,
``?valid_at=``) and ``GET /v1/portfolios/{id}/restatements`` (``projections.restatements``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from api.auth import Auditor, Viewer
from api.deps import ServicesDep
from api.params import key_cursor, parse_instant
from api.problems import Problem
from api.routers.projections import (
    NOT_FOUND,
    as_of_view,
    documented,
    json_response,
    parse_as_of,
    view,
)
from api.validtime import ValidAt, list_at, valid_at_view

router = APIRouter(tags=["portfolios"])

EXAMPLE = {
    "portfolio_id": "PF-1", "name": "Growth", "pmo_type": "directive", "currency": "EUR",
    "owner": "Olga", "budget_envelope": "1000000", "remaining_envelope": "999000",
    "approved_budget": "1000", "actual_cost": "250.50", "estimate_at_completion": "626.25",
    "budget_at_completion": "1000", "earned_value": "400.00", "planned_value": "901.10",
    "cpi": 1.5968, "spi": 0.4439, "project_count": 1,
    "projects_by_state": {"proposed": 0, "approved": 0, "rejected": 0, "active": 1,
                          "on_hold": 0, "completed": 0, "cancelled": 0},
    "projects_by_health": {"green": 0, "amber": 1, "red": 0, "unknown": 0},
    "objectives": [{"objective_id": "O1", "title": "Grow", "weight": 0.5,
                    "budget_share": 0.4}],
    "version": 3,
}


@router.get("/v1/portfolios", summary="Every portfolio's view, by id")
async def list_portfolios(
    roles: Viewer, services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    as_of: Annotated[str | None, Query(description="recording time, ISO 8601 (auditor): "
                                       "each item as GET /v1/portfolios/{id}?as_of= answers "
                                       "it; one that did not exist then is left out")] = None,
    valid_at: ValidAt = None,
) -> Response:
    svc = services.projections
    after = key_cursor(cursor)
    if as_of is not None or valid_at is not None:
        return await list_at(services, "portfolio", after, limit, valid_at, as_of, roles)
    return await view(services, f"portfolios:{after}:{limit}",
                      lambda: svc.portfolio_list(after, limit), "page", "")


@router.get("/v1/portfolios/{portfolio_id}", summary="A portfolio: counts, money, CPI/SPI",
            responses=documented(EXAMPLE))
async def get_portfolio(
    portfolio_id: str, roles: Viewer, services: ServicesDep,
    as_of: Annotated[str | None, Query(description="recording time, ISO 8601 (auditor)")] = None,
    valid_at: ValidAt = None,
) -> Response:
    if valid_at is not None:
        return await valid_at_view(services, "portfolio", portfolio_id, valid_at, as_of, roles)
    at = parse_as_of(as_of, roles)
    if at is not None:
        return await as_of_view(services, "portfolio", portfolio_id, at)
    svc = services.projections
    return await view(services, f"portfolio:{portfolio_id}",
                      lambda: svc.portfolio(portfolio_id), "portfolio", portfolio_id)


@router.get("/v1/portfolios/{portfolio_id}/restatements",
            summary="What a report for a valid time said then, against what is known now",
            responses=NOT_FOUND)
async def get_restatements(
    portfolio_id: str, _: Auditor, services: ServicesDep,
    valid_at: Annotated[str, Query(description="valid time the report was for, ISO 8601")],
    reported_at: Annotated[str, Query(description="recording time the report was made at, "
                                      "ISO 8601")],
) -> Response:
    valid = parse_instant("valid_at", valid_at)
    reported = parse_instant("reported_at", reported_at)
    assert valid is not None and reported is not None
    body = await run_in_threadpool(services.projections.restatements, services.app,
                                   portfolio_id, valid, reported)
    if body is None:
        raise Problem(404, "Not found", f"no portfolio '{portfolio_id}' valid by "
                      f"{valid.isoformat()}", kind="not-found")
    return json_response(body)
