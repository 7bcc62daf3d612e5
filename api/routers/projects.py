"""Project views: ``GET /v1/projects`` (filters, sort, cursor) and ``GET /v1/projects/{id}``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from api.auth import Viewer
from api.deps import ServicesDep
from api.documents import State
from api.params import SearchText
from api.problems import Problem
from api.routers.projections import (
    as_of_view,
    documented,
    json_response,
    parse_as_of,
    view,
)
from api.validtime import ValidAt, parse_valid_at, valid_at_view
from projections.lists import SORTS, BadQuery, ProjectQuery

router = APIRouter(tags=["projects"])

EXAMPLE = {
    "project_id": "X1", "portfolio_id": "PF-1", "program_id": "G1", "name": "New CRM",
    "sponsor": "COO", "state": "active", "manager_id": "M1", "priority": 2,
    "budget_requested": "100000", "approved_budget": "1000", "actual_cost": "250.50",
    "estimate_at_completion": "626.25", "earned_value": "400.00", "planned_value": "901.10",
    "planned_start": "2026-01-01", "planned_finish": "2026-12-31",
    "baseline_finish": "2026-12-31", "started_on": "2026-02-01", "finished_on": None,
    "health": {"overall": "amber", "scope": "green", "schedule": "red", "budget": "green"},
    "percent_complete": 40,
    "milestones": [{"milestone_id": "MS1", "name": "Go live", "due": "2026-06-01",
                    "achieved_on": None}],
    "open_risks": [{"risk_id": "R1", "title": "Vendor", "probability": 0.5, "impact": 3}],
    "objectives": [], "version": 6, "cpi": 1.5968, "spi": 0.4439,
    "updated_at": "2026-03-02T09:30:00.120000+00:00",
}

Health = Literal["green", "amber", "red", "unknown"]


@router.get("/v1/projects", summary="Projects, filtered and sorted, one page at a time")
async def list_projects(
    roles: Viewer, services: ServicesDep,
    portfolio: str | None = None, program: str | None = None, state: State | None = None,
    health: Health | None = None, manager: str | None = None,
    q: SearchText = None,
    sort: Annotated[str, Query(description=f"one of {', '.join(SORTS)}; '-' for descending")
                    ] = "project_id",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    valid_at: ValidAt = None,
    as_of: Annotated[str | None, Query(description="recording time, ISO 8601 (auditor): "
                                       "the list as recorded then (sort: project_id)")] = None,
) -> Response:
    query = ProjectQuery(portfolio, program, state, health, manager, q, sort, limit, cursor)
    svc = services.projections
    if valid_at is not None or as_of is not None:
        valid, recorded = parse_valid_at(valid_at, as_of, roles)
        try:
            page = await run_in_threadpool(svc.project_list_valid, services.app, query, valid,
                                           recorded)
        except BadQuery as e:
            raise Problem(422, "Invalid request", str(e), kind="invalid-request") from None
        return json_response(page)
    hit, body = svc.peek(f"projects:{query!r}")
    if not hit or body is None:
        try:
            body = await run_in_threadpool(svc.project_list, query)
        except BadQuery as e:
            raise Problem(422, "Invalid request", str(e), kind="invalid-request") from None
    return json_response(body)


@router.get("/v1/projects/{project_id}", summary="A project: state, money, health, KPIs",
            responses=documented(EXAMPLE))
async def get_project(
    project_id: str, roles: Viewer, services: ServicesDep,
    as_of: Annotated[str | None, Query(description="recording time, ISO 8601 (auditor)")] = None,
    valid_at: ValidAt = None,
) -> Response:
    if valid_at is not None:
        return await valid_at_view(services, "project", project_id, valid_at, as_of, roles)
    at = parse_as_of(as_of, roles)
    if at is not None:
        return await as_of_view(services, "project", project_id, at)
    svc = services.projections
    return await view(services, f"project:{project_id}", lambda: svc.project(project_id),
                      "project", project_id)
