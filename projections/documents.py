"""What the views hold: the doc each fold keeps per aggregate, and a project's figure row.

Types only (``TypedDict`` and ``NamedTuple``): a doc stays the plain dict orjson reads
and writes, so saying its shape costs nothing at run time. Money, ratios, dates and
instants are the decimal and ISO strings the store holds (``projections.folds``).
"""

from __future__ import annotations

from typing import Any, NamedTuple, NotRequired, TypedDict


class Versioned(TypedDict):
    """What every doc has: the store id of its aggregate, the version folded last, and
    (projects and portfolios) the aggregate's valid time so far (``projections.validtime``)."""

    id: str
    version: NotRequired[int]  # set by the fold after each event, the first included
    valid_us: NotRequired[int]


class Health(TypedDict):
    overall: str | None
    scope: str | None
    schedule: str | None
    budget: str | None


class Milestone(TypedDict):
    name: str
    due: str
    achieved_on: str | None


class Risk(TypedDict):
    title: str
    probability: str
    impact: int


class Contribution(TypedDict):
    objective_id: str
    contribution: str


class ProjectDoc(Versioned):
    project_id: str
    portfolio_id: str
    program_id: str | None
    name: str
    sponsor: str
    state: str  # a ProjectState value
    manager_id: str | None
    priority: int | None
    budget_requested: str
    approved_budget: str | None
    actual_cost: str
    forecast_eac: str | None
    planned_start: str
    planned_finish: str
    baseline_finish: str | None
    started_on: str | None
    finished_on: str | None
    health: Health
    percent_complete: str | None
    status_date: str | None  # the day the last status report describes (its v2 field)
    milestones: dict[str, Milestone]
    open_risks: dict[str, Risk]
    objectives: list[Contribution]
    proposed_at: str
    updated_at: NotRequired[str]


class Objective(TypedDict):
    title: str
    weight: str


class PortfolioDoc(Versioned):
    portfolio_id: str
    name: str
    pmo_type: str
    currency: str
    budget_envelope: str
    owner: str
    objectives: dict[str, Objective]


class ProgramDoc(Versioned):
    program_id: str
    portfolio_id: str
    name: str
    manager_id: str | None


class ManagerDoc(Versioned):
    manager_id: str
    name: str
    capacity: int
    grade: str | None
    in_pool: bool
    # Held now, as the manager aggregate recorded them (the view counts the projects'
    # figures instead: an assignment that overtook the registration is not in here).
    projects: list[str]


class Fig(NamedTuple):
    """A project's figures as roll-ups read them (stored as a JSON list in this order:
    ``projections.projects.fig_row``), after one event that changes them."""

    key: str  # the publisher's project id
    state: str
    overall: str | None
    bac: str | None  # the approved budget
    ac: str
    percent_complete: str | None
    forecast_eac: str | None
    planned_start: str
    baseline_finish: str | None
    finished_on: str | None
    manager_id: str | None
    program_id: str | None
    objectives: list[list[Any]]  # [objective_id, contribution] pairs
