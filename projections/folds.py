"""Pure folds: the state of one aggregate's view, from its stored events, one at a time.

The live projections and the as-of reads run these same functions (live over
the notification log, as-of over one aggregate's events up to the version it
had at the instant), so the two can never disagree. A doc is plain JSON data:
money, dates and instants stay the decimal and ISO strings the store holds.

Each fold dispatches through a table keyed by the domain's own event classes
(``Project.CostRecorded``...): the topic each one reads is the class's ``TOPIC``,
never a string spelled here. ``tests/unit/test_event_catalogue`` checks that every
domain event is folded, or is listed in ``NOT_FOLDED`` with why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from domain.base import PmoEvent
from domain.catalogue import topic_of
from domain.manager import Manager
from domain.operations import Operation
from domain.portfolio import Portfolio
from domain.program import Program
from domain.project import Project, status_date_of
from domain.values import ProjectState
from projections.documents import ManagerDoc, PortfolioDoc, ProgramDoc, ProjectDoc, Versioned
from projections.feed import RecordedEvent, value

Doc = dict[str, Any]  # any view's doc, as JSON (``projections.documents`` says each one's)
Payload = dict[str, Any]
D = TypeVar("D", bound=Versioned)
Step = Callable[[D, Payload], None]  # one event's change to a doc that exists


def topics(events: Iterable[type[PmoEvent]]) -> frozenset[str]:
    return frozenset(topic_of(e) for e in events)


def _by_topic(steps: dict[type[PmoEvent], Step[D]]) -> dict[str, Step[D]]:
    return {topic_of(e): step for e, step in steps.items()}


def _event(doc: D, e: RecordedEvent) -> D:
    doc["version"] = e.originator_version
    return doc


# -- projects ---------------------------------------------------------------------

# The states as docs spell them (looked up once: an enum's ``value`` is a slow property).
_PROPOSED_STATE = ProjectState.PROPOSED.value
_APPROVED = ProjectState.APPROVED.value
_ACTIVE = ProjectState.ACTIVE.value
_COMPLETED = ProjectState.COMPLETED.value


def _new_project(e: RecordedEvent) -> ProjectDoc:
    p = e.payload
    return {
        "id": e.oid_hex, "project_id": p["key"], "portfolio_id": p["portfolio_id"],
        "program_id": p["program_id"], "name": p["name"], "sponsor": p["sponsor"],
        "state": _PROPOSED_STATE, "manager_id": None, "priority": p["priority"],
        "budget_requested": value(p, "budget_requested"), "approved_budget": None,
        "actual_cost": "0", "forecast_eac": None,
        "planned_start": value(p, "planned_start"),
        "planned_finish": value(p, "planned_finish"),
        "baseline_finish": None, "started_on": None, "finished_on": None,
        "health": {"overall": None, "scope": None, "schedule": None, "budget": None},
        "percent_complete": None, "status_date": None, "milestones": {}, "open_risks": {},
        "objectives": [{"objective_id": o["objective_id"],
                        "contribution": value(o, "contribution")}
                       for o in p.get("objectives") or ()],
        "proposed_at": e.recorded_at_iso,
    }



def _to(state: ProjectState) -> Step[ProjectDoc]:
    """A step that only moves the project to ``state``."""
    name = state.value

    def step(doc: ProjectDoc, p: Payload) -> None:
        doc["state"] = name

    return step


def _cost_recorded(doc: ProjectDoc, p: Payload) -> None:
    doc["actual_cost"] = str(Decimal(doc["actual_cost"]) + Decimal(value(p, "amount")))


def _status_reported(doc: ProjectDoc, p: Payload) -> None:
    doc["health"] = {"overall": value(p, "overall"), "scope": value(p, "scope"),
                     "schedule": value(p, "schedule"), "budget": value(p, "budget")}
    doc["percent_complete"] = value(p, "percent_complete")
    doc["status_date"] = status_date(p)


def _approved(doc: ProjectDoc, p: Payload) -> None:
    doc["state"] = _APPROVED
    doc["approved_budget"] = value(p, "approved_budget")
    doc["baseline_finish"] = doc["planned_finish"]


def _budget_changed(doc: ProjectDoc, p: Payload) -> None:
    doc["approved_budget"] = value(p, "approved_budget")


def _forecast_updated(doc: ProjectDoc, p: Payload) -> None:
    doc["forecast_eac"] = value(p, "estimate_at_completion")


def _manager_assigned(doc: ProjectDoc, p: Payload) -> None:
    doc["manager_id"] = p["manager_id"]


def _started(doc: ProjectDoc, p: Payload) -> None:
    doc["state"] = _ACTIVE
    doc["started_on"] = value(p, "started_on")


def _completed(doc: ProjectDoc, p: Payload) -> None:
    doc["state"] = _COMPLETED
    doc["finished_on"] = value(p, "finished_on")


def _schedule_changed(doc: ProjectDoc, p: Payload) -> None:
    doc["planned_finish"] = value(p, "planned_finish")


def _milestone_planned(doc: ProjectDoc, p: Payload) -> None:
    doc["milestones"][p["milestone_id"]] = {"name": p["name"], "due": value(p, "due"),
                                            "achieved_on": None}


def _milestone_achieved(doc: ProjectDoc, p: Payload) -> None:
    doc["milestones"][p["milestone_id"]]["achieved_on"] = value(p, "achieved_on")


def _risk_raised(doc: ProjectDoc, p: Payload) -> None:
    doc["open_risks"][p["risk_id"]] = {"title": p["title"],
                                       "probability": value(p, "probability"),
                                       "impact": p["impact"]}


def _risk_closed(doc: ProjectDoc, p: Payload) -> None:
    doc["open_risks"].pop(p["risk_id"], None)


# What each project event after the first changes in its doc (most frequent first).
PROJECT_STEPS: dict[type[PmoEvent], Step[ProjectDoc]] = {
    Project.CostRecorded: _cost_recorded,
    Project.StatusReported: _status_reported,
    Project.Approved: _approved,
    Project.BudgetChanged: _budget_changed,
    Project.ForecastUpdated: _forecast_updated,
    Project.ManagerAssigned: _manager_assigned,
    Project.Started: _started,
    Project.Rejected: _to(ProjectState.REJECTED),
    Project.PutOnHold: _to(ProjectState.ON_HOLD),
    Project.Resumed: _to(ProjectState.ACTIVE),
    Project.Cancelled: _to(ProjectState.CANCELLED),
    Project.Completed: _completed,
    Project.ScheduleChanged: _schedule_changed,
    Project.MilestonePlanned: _milestone_planned,
    Project.MilestoneAchieved: _milestone_achieved,
    Project.RiskRaised: _risk_raised,
    Project.RiskClosed: _risk_closed,
}
_PROJECT = _by_topic(PROJECT_STEPS)
_PROJECT_CREATED = topic_of(Project.Proposed)


def fold_project(doc: ProjectDoc | None, e: RecordedEvent) -> ProjectDoc | None:
    topic = e.topic
    if topic == _PROJECT_CREATED:
        doc = _new_project(e)
    elif doc is None:
        return None  # a project whose creation this view never saw: nothing to fold into
    else:
        step = _PROJECT.get(topic)
        if step is not None:
            step(doc, e.payload)
    doc["updated_at"] = e.recorded_at_iso
    return _event(doc, e)


def status_date(p: Payload) -> str:
    """The day a status report describes. A v1 report (stored before v2 added the field)
    is read as the domain's upcaster reads it: the UTC day of its ``time``. The stored
    bytes are never rewritten (the audit chain hashes them)."""
    stored: str | None = value(p, "status_date")
    if stored is not None:
        return stored
    return status_date_of(datetime.fromisoformat(value(p, "time"))).isoformat()

# Project events that change what roll-ups read (the rest: milestones, risks, schedule).
FIGURE_EVENTS = topics((
    Project.Proposed, Project.Approved, Project.Rejected, Project.ManagerAssigned,
    Project.Started, Project.PutOnHold, Project.Resumed, Project.BudgetChanged,
    Project.CostRecorded, Project.ForecastUpdated, Project.StatusReported, Project.Completed,
    Project.Cancelled))


# -- portfolios, programs, managers -------------------------------------------------

def _objective_set(doc: PortfolioDoc, p: Payload) -> None:
    doc["objectives"][p["objective_id"]] = {"title": p["title"], "weight": value(p, "weight")}


PORTFOLIO_STEPS: dict[type[PmoEvent], Step[PortfolioDoc]] = {Portfolio.ObjectiveSet: _objective_set}
_PORTFOLIO = _by_topic(PORTFOLIO_STEPS)
_PORTFOLIO_CREATED = topic_of(Portfolio.Opened)

# Events a view folds into its version alone, and why nothing else.
_DERIVED = ("the envelope's bookkeeping: the portfolio view derives its approved budget "
            "from its projects (CONTRACT section 9)")
VERSION_ONLY: dict[type[PmoEvent], str] = {
    Portfolio.BudgetCommitted: _DERIVED, Portfolio.BudgetReleased: _DERIVED}
BUDGET_BOOKKEEPING = topics((Portfolio.BudgetCommitted, Portfolio.BudgetReleased))


def fold_portfolio(doc: PortfolioDoc | None, e: RecordedEvent) -> PortfolioDoc | None:
    topic = e.topic
    if topic in BUDGET_BOOKKEEPING:
        # The envelope rule's bookkeeping, most of a portfolio's events: the view derives
        # the approved budget from its projects (CONTRACT section 9), so skip the parse.
        return None if doc is None else _event(doc, e)
    p = e.payload
    if topic == _PORTFOLIO_CREATED:
        doc = {"id": e.oid_hex, "portfolio_id": p["key"], "name": p["name"],
               "pmo_type": value(p, "pmo_type"), "currency": p["currency"],
               "budget_envelope": value(p, "budget_envelope"), "owner": p["owner"],
               "objectives": {}}
    elif doc is None:
        return None
    else:
        step = _PORTFOLIO.get(topic)
        if step is not None:
            step(doc, p)
    return _event(doc, e)


_PROGRAM_CREATED = topic_of(Program.Launched)


def fold_program(doc: ProgramDoc | None, e: RecordedEvent) -> ProgramDoc | None:
    if e.topic == _PROGRAM_CREATED:
        p = e.payload
        doc = {"id": e.oid_hex, "program_id": p["key"],
               "portfolio_id": p["portfolio_id"], "name": p["name"],
               "manager_id": p.get("manager_id")}
    elif doc is None:
        return None
    return _event(doc, e)


def _capacity_changed(doc: ManagerDoc, p: Payload) -> None:
    doc["capacity"] = p["capacity"]


def _left_pool(doc: ManagerDoc, p: Payload) -> None:
    doc["in_pool"] = False


def _project_assigned(doc: ManagerDoc, p: Payload) -> None:
    if p["project_id"] not in doc["projects"]:
        doc["projects"].append(p["project_id"])


def _project_released(doc: ManagerDoc, p: Payload) -> None:
    if p["project_id"] in doc["projects"]:
        doc["projects"].remove(p["project_id"])


MANAGER_STEPS: dict[type[PmoEvent], Step[ManagerDoc]] = {
    Manager.CapacityChanged: _capacity_changed,
    Manager.LeftPool: _left_pool,
    Manager.ProjectAssigned: _project_assigned,
    Manager.ProjectReleased: _project_released,
}
_MANAGER = _by_topic(MANAGER_STEPS)
_MANAGER_CREATED = topic_of(Manager.Registered)


def fold_manager(doc: ManagerDoc | None, e: RecordedEvent) -> ManagerDoc | None:
    p = e.payload
    topic = e.topic
    if topic == _MANAGER_CREATED:
        doc = {"id": e.oid_hex, "manager_id": p["key"], "name": p["name"],
               "capacity": p["capacity"], "grade": p.get("grade"), "in_pool": True,
               "projects": []}
        return _event(doc, e)
    if doc is None:
        return None
    step = _MANAGER.get(topic)
    if step is not None:
        step(doc, p)
    return _event(doc, e)


# The created event each fold starts a doc from.
CREATED: dict[type[PmoEvent], str] = {
    Project.Proposed: "projects", Portfolio.Opened: "portfolios", Program.Launched: "programs",
    Manager.Registered: "managers"}

# Domain events no view folds, and why.
NOT_FOLDED: dict[type[PmoEvent], str] = {
    Operation.QuarantineRetried: "an operator's action: only the audit trail lists it",
    Operation.QuarantineEvicted: "an operator's action: only the audit trail lists it",
}


def folded() -> dict[type[PmoEvent], str]:
    """Every domain event a fold reads, with how (created, a step, the version alone)."""
    out = dict.fromkeys(CREATED, "creates its doc")
    for steps in (PROJECT_STEPS, PORTFOLIO_STEPS, MANAGER_STEPS):
        out.update(dict.fromkeys(steps, "a step"))
    out.update(dict.fromkeys(VERSION_ONLY, "the version alone"))
    return out


def fold_all(fold: Any, events: list[RecordedEvent]) -> Doc | None:
    doc: Doc | None = None
    for e in events:
        doc = fold(doc, e)
    return doc
