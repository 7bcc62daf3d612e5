"""Pure folds: the state of one aggregate's view, from its stored events, one at a time.

The live projections and the as-of reads run these same functions (live over
the notification log, as-of over one aggregate's events up to the version it
had at the instant), so the two can never disagree. A doc is plain JSON data:
money, dates and instants stay the decimal and ISO strings the store holds.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.project import status_date_of
from projections.feed import RecordedEvent, value

Doc = dict[str, Any]


def _event(doc: Doc, e: RecordedEvent) -> Doc:
    doc["version"] = e.originator_version
    return doc


def fold_project(doc: Doc | None, e: RecordedEvent) -> Doc | None:
    p = e.payload
    kind = e.topic[12:]  # after "pmo.project."
    if kind == "proposed":
        doc = {
            "id": e.oid_hex, "project_id": p["key"], "portfolio_id": p["portfolio_id"],
            "program_id": p["program_id"], "name": p["name"], "sponsor": p["sponsor"],
            "state": "proposed", "manager_id": None, "priority": p["priority"],
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
    elif doc is None:
        return None  # a project whose creation this view never saw: nothing to fold into
    elif kind == "cost_recorded":
        doc["actual_cost"] = str(Decimal(doc["actual_cost"]) + Decimal(value(p, "amount")))
    elif kind == "status_reported":
        doc["health"] = {k: value(p, k) for k in ("overall", "scope", "schedule", "budget")}
        doc["percent_complete"] = value(p, "percent_complete")
        doc["status_date"] = status_date(p)
    elif kind == "approved":
        doc["state"] = "approved"
        doc["approved_budget"] = value(p, "approved_budget")
        doc["baseline_finish"] = doc["planned_finish"]
    elif kind == "budget_changed":
        doc["approved_budget"] = value(p, "approved_budget")
    elif kind == "forecast_updated":
        doc["forecast_eac"] = value(p, "estimate_at_completion")
    elif kind == "manager_assigned":
        doc["manager_id"] = p["manager_id"]
    elif kind == "started":
        doc["state"] = "active"
        doc["started_on"] = value(p, "started_on")
    elif kind in _STATE_ONLY:
        doc["state"] = _STATE_ONLY[kind]
    elif kind == "completed":
        doc["state"] = "completed"
        doc["finished_on"] = value(p, "finished_on")
    elif kind == "schedule_changed":
        doc["planned_finish"] = value(p, "planned_finish")
    elif kind == "milestone_planned":
        doc["milestones"][p["milestone_id"]] = {"name": p["name"], "due": value(p, "due"),
                                                "achieved_on": None}
    elif kind == "milestone_achieved":
        doc["milestones"][p["milestone_id"]]["achieved_on"] = value(p, "achieved_on")
    elif kind == "risk_raised":
        doc["open_risks"][p["risk_id"]] = {"title": p["title"],
                                           "probability": value(p, "probability"),
                                           "impact": p["impact"]}
    elif kind == "risk_closed":
        doc["open_risks"].pop(p["risk_id"], None)
    doc["updated_at"] = e.recorded_at_iso
    return _event(doc, e)


def status_date(p: dict[str, Any]) -> str:
    """The day a status report describes. A v1 report (stored before v2 added the field)
    is read as the domain's upcaster reads it: the UTC day of its ``time``. The stored
    bytes are never rewritten (the audit chain hashes them)."""
    stored: str | None = value(p, "status_date")
    if stored is not None:
        return stored
    return status_date_of(datetime.fromisoformat(value(p, "time"))).isoformat()


_STATE_ONLY = {"rejected": "rejected", "put_on_hold": "on_hold", "resumed": "active",
               "cancelled": "cancelled"}

# Project events that change what roll-ups read (the rest: milestones, risks, schedule).
FIGURE_EVENTS = frozenset({
    "pmo.project.proposed", "pmo.project.approved", "pmo.project.rejected",
    "pmo.project.manager_assigned", "pmo.project.started", "pmo.project.put_on_hold",
    "pmo.project.resumed", "pmo.project.budget_changed", "pmo.project.cost_recorded",
    "pmo.project.forecast_updated", "pmo.project.status_reported", "pmo.project.completed",
    "pmo.project.cancelled"})


def fold_portfolio(doc: Doc | None, e: RecordedEvent) -> Doc | None:
    if e.topic in BUDGET_BOOKKEEPING:
        # The envelope rule's bookkeeping, most of a portfolio's events: the view derives
        # the approved budget from its projects (CONTRACT section 9), so skip the parse.
        return None if doc is None else _event(doc, e)
    p = e.payload
    if e.topic == "pmo.portfolio.opened":
        doc = {"id": e.oid_hex, "portfolio_id": p["key"], "name": p["name"],
               "pmo_type": value(p, "pmo_type"), "currency": p["currency"],
               "budget_envelope": value(p, "budget_envelope"), "owner": p["owner"],
               "objectives": {}}
    elif doc is None:
        return None
    elif e.topic == "pmo.portfolio.objective_set":
        doc["objectives"][p["objective_id"]] = {"title": p["title"],
                                                "weight": value(p, "weight")}
    return _event(doc, e)


BUDGET_BOOKKEEPING = frozenset({"pmo.portfolio.budget_committed",
                                 "pmo.portfolio.budget_released"})


def fold_program(doc: Doc | None, e: RecordedEvent) -> Doc | None:
    p = e.payload
    if e.topic == "pmo.program.launched":
        doc = {"id": e.oid_hex, "program_id": p["key"],
               "portfolio_id": p["portfolio_id"], "name": p["name"],
               "manager_id": p.get("manager_id")}
    elif doc is None:
        return None
    return _event(doc, e)


def fold_manager(doc: Doc | None, e: RecordedEvent) -> Doc | None:
    p = e.payload
    kind = e.topic[12:]  # after "pmo.manager."
    if kind == "registered":
        doc = {"id": e.oid_hex, "manager_id": p["key"], "name": p["name"],
               "capacity": p["capacity"], "grade": p.get("grade"), "in_pool": True,
               "projects": [], "assigned_ever": []}
        return _event(doc, e)
    if doc is None:
        return None
    if kind == "capacity_changed":
        doc["capacity"] = p["capacity"]
    elif kind == "left_pool":
        doc["in_pool"] = False
    elif kind == "project_assigned":
        if p["project_id"] not in doc["projects"]:
            doc["projects"].append(p["project_id"])
        if p["project_id"] not in doc["assigned_ever"]:  # as-of KPIs look among these
            doc["assigned_ever"].append(p["project_id"])
    elif kind == "project_released" and p["project_id"] in doc["projects"]:
        doc["projects"].remove(p["project_id"])
    return _event(doc, e)


def fold_all(fold: Any, events: list[RecordedEvent]) -> Doc | None:
    doc: Doc | None = None
    for e in events:
        doc = fold(doc, e)
    return doc
