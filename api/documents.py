"""The shapes of the API's JSON answers (CONTRACT 8), for the OpenAPI document only.

The routes write ready JSON bytes from the projections (the read path's speed depends
on it), so these models never touch a request: ``api.openapi`` puts their schemas in
``/openapi.json``, and the schemathesis run checks the answers against them. Objects
stay open (``add more keys freely``): a client must ignore keys it does not know.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Money = Annotated[str, Field(description="a decimal string, e.g. \"1234.50\"",
                             examples=["1234.50"])]
Ratio = Annotated[float | None, Field(description="null when undefined")]
Colour = Literal["green", "amber", "red"]
# ProjectState's values (a type needs them spelled; tests/unit/test_event_catalogue checks).
State = Literal["proposed", "approved", "rejected", "active", "on_hold", "completed",
                "cancelled"]
Cursor = Annotated[str | None, Field(description="give it as ?cursor= for the next page; "
                                                 "null on the last page")]


class Doc(BaseModel):
    model_config = ConfigDict(extra="allow")


class Problem(Doc):
    """RFC 9457 problem details; members beyond these say more (``reason``, ``errors``...)."""

    type: str = Field(description="a URI naming the kind of problem")
    title: str
    status: int = Field(ge=100, le=599)
    detail: str | None = None
    instance: str | None = None


class ByState(Doc):
    proposed: int
    approved: int
    rejected: int
    active: int
    on_hold: int
    completed: int
    cancelled: int


class ByHealth(Doc):
    green: int
    amber: int
    red: int
    unknown: int


class PortfolioObjective(Doc):
    objective_id: str
    title: str
    weight: float | None
    budget_share: Ratio


class Rollup(Doc):
    approved_budget: Money
    actual_cost: Money
    estimate_at_completion: Money | None
    budget_at_completion: Money | None = None
    budget_variance: Money | None = None
    earned_value: Money | None = None
    planned_value: Money | None = None
    cpi: Ratio
    spi: Ratio
    project_count: int | None = None
    projects_by_state: ByState
    projects_by_health: ByHealth
    version: int


class Portfolio(Rollup):
    portfolio_id: str
    name: str
    pmo_type: Literal["supportive", "controlling", "directive"]
    currency: str
    owner: str | None = None
    budget_envelope: Money
    remaining_envelope: Money | None = None
    objectives: list[PortfolioObjective]


class Program(Rollup):
    program_id: str
    portfolio_id: str
    name: str
    manager_id: str | None
    projects: list[str]


class Health(Doc):
    overall: Colour | None
    scope: Colour | None
    schedule: Colour | None
    budget: Colour | None


class Milestone(Doc):
    milestone_id: str
    name: str
    due: date
    achieved_on: date | None = None


class Risk(Doc):
    risk_id: str
    title: str
    probability: float | None
    impact: int


class Contribution(Doc):
    objective_id: str
    contribution: float | None


class Project(Doc):
    project_id: str
    portfolio_id: str
    program_id: str | None
    name: str
    sponsor: str
    state: State
    manager_id: str | None
    priority: int | None
    budget_requested: Money
    approved_budget: Money | None
    actual_cost: Money
    estimate_at_completion: Money | None
    earned_value: Money | None = None
    planned_value: Money | None = None
    planned_start: date
    planned_finish: date
    baseline_finish: date | None
    started_on: date | None
    finished_on: date | None
    health: Health
    percent_complete: float | None
    status_date: date | None = None
    milestones: list[Milestone]
    open_risks: list[Risk]
    objectives: list[Contribution] = []
    version: int
    cpi: Ratio
    spi: Ratio
    updated_at: datetime | None = None


class Manager(Doc):
    manager_id: str
    name: str
    grade: str | None = None
    capacity: int
    active_projects: int
    utilisation: float | None = None
    projects: list[str]
    in_pool: bool
    completed_projects: int | None = None
    on_time_rate: Ratio = None
    budget_variance: Money | None = None
    version: int | None = None


class PortfolioList(Doc):
    items: list[Portfolio]
    next_cursor: Cursor


class ProjectList(Doc):
    items: list[Project]
    next_cursor: Cursor


class ManagerList(Doc):
    items: list[Manager]
    next_cursor: Cursor


class HistoryEntry(Doc):
    position: int | None
    version: int
    type: str
    time: datetime
    recorded_at: datetime
    actor: str | None
    source: str
    event_id: str
    data: dict[str, Any]


class History(Doc):
    project_id: str
    items: list[HistoryEntry]
    next_cursor: Cursor


class AuditEntry(Doc):
    position: int
    aggregate_id: str
    version: int
    type: str
    time: datetime
    recorded_at: datetime
    actor: str | None
    source: str
    hash: str
    prev_hash: str


class AuditPage(Doc):
    items: list[AuditEntry]
    next_cursor: Cursor


class AuditVerified(Doc):
    ok: bool
    checked: int | None = Field(None, description="events checked, when ok")
    broken_at: int | None = Field(None, description="first position that breaks, when not")


class Rejection(Doc):
    id: int
    kind: Literal["dlq", "rejected"]
    reason: str
    source: str | None = None
    event_id: str | None = None
    type: str | None = None
    subject: str | None = None
    origin: str
    received_at: datetime
    headers: list[Any]
    raw_base64: str


class RejectionPage(Doc):
    items: list[Rejection]
    next_cursor: Cursor
    counts: dict[str, int]


class ProjectionStatus(Doc):
    name: str
    position: int
    lag: int
    last_event_at: datetime | None
    state: str


class ProjectionList(Doc):
    items: list[ProjectionStatus]
    next_cursor: Cursor = None


class RebuildStarted(Doc):
    name: str
    state: Literal["rebuilding"]


class Alive(Doc):
    status: Literal["ok"]


class Ready(Doc):
    status: Literal["ready"]
    checks: dict[str, str]


class Stored(Doc):
    """One event's answer: 201 stored, 200 a duplicate (as the first time), 202 queued."""

    id: str | None
    source: str | None = None
    status: Literal["accepted", "duplicate", "queued"]
    position: int | None


class BatchEntry(Doc):
    id: str | None
    status: Literal["accepted", "duplicate", "queued", "invalid", "rejected"]
    position: int | None
    reason: str | None = None
    code: str | None = None


class BatchResults(Doc):
    results: list[BatchEntry]


class WhoAmI(Doc):
    roles: list[str] = Field(description="the roles the calling key holds (auditor implies "
                                         "viewer)")
    known_roles: list[str]


class AuditAnchor(Doc):
    position: int = Field(description="the trail's last linked position (0: empty)")
    head_hash: str
    recorded_at: datetime = Field(description="when this head was read")
    event_recorded_at: datetime | None


class RestatedFigures(Doc):
    """Figures for valid time T, as reported at R or as known now (null: none then)."""

    reported: dict[str, Any] | None
    now: dict[str, Any] | None
    moved: list[str] = Field(description="the figures that differ")


class RestatingEvent(Doc):
    position: int | None
    type: str
    source: str | None
    id: str | None
    version: int
    time: str | None
    recorded_at: datetime


class RestatedProject(RestatedFigures):
    project_id: str
    events: list[RestatingEvent] = Field(description="recorded after R, they moved it")


class Restatements(Doc):
    portfolio_id: str
    valid_at: datetime
    reported_at: datetime
    portfolio: RestatedFigures
    projects: list[RestatedProject]


class ReceiptStatus(Doc):
    status: Literal["pending", "stored", "parked", "rejected", "dead-lettered"]
    position: int | None = Field(None, description="stored: pass it as min_position")
    reason: str | None = Field(None, description="rejected or dead-lettered: why")
