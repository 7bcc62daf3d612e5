"""The project: its lifecycle, money and delivery facts.

Commands check the lifecycle and values and raise a ``DomainRejection``; the
``apply`` of each event only assigns, because it runs again on every replay.
Rules that need other aggregates (envelope, capacity, pool) live in the
application, which calls these commands once they hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import BaseAggregate
from eventsourcing.domain import Snapshot as AggregateSnapshot

from domain.base import PmoCreated, PmoEvent, store_id, trigger
from domain.errors import InvalidValue, TransitionNotAllowed
from domain.values import Colour, Envelope, ProjectState

S = ProjectState
_NON_TERMINAL = frozenset({S.PROPOSED, S.APPROVED, S.ACTIVE, S.ON_HOLD})
_RUNNING = frozenset({S.APPROVED, S.ACTIVE, S.ON_HOLD})

# The lifecycle of CONTRACT section 2: the states each event may happen in.
ALLOWED_FROM: dict[str, frozenset[ProjectState]] = {
    "approved": frozenset({S.PROPOSED}),
    "rejected": frozenset({S.PROPOSED}),
    "started": frozenset({S.APPROVED}),
    "put_on_hold": frozenset({S.ACTIVE}),
    "resumed": frozenset({S.ON_HOLD}),
    "completed": frozenset({S.ACTIVE}),
    "cancelled": _NON_TERMINAL,
    "manager_assigned": _NON_TERMINAL,
    "budget_changed": _RUNNING,
    "cost_recorded": _RUNNING,
    "forecast_updated": _RUNNING,
    "schedule_changed": _RUNNING,
    "milestone_planned": _RUNNING,
    "milestone_achieved": _RUNNING,
    "status_reported": _RUNNING,
    "risk_raised": _RUNNING,
    "risk_closed": _RUNNING,
}


@dataclass(frozen=True, slots=True)
class ObjectiveContribution:
    objective_id: str
    contribution: Decimal


class Project(BaseAggregate[UUID]):
    TOPIC = "pmo.project"

    key: str
    portfolio_id: str
    program_id: str | None
    name: str
    sponsor: str
    budget_requested: Decimal
    planned_start: date
    planned_finish: date
    baseline_finish: date | None
    objectives: list[dict[str, Any]]
    priority: int | None
    state: ProjectState
    manager_id: str | None
    approved_budget: Decimal | None
    actual_cost: Decimal
    forecast_eac: Decimal | None
    started_on: date | None
    finished_on: date | None
    milestones: dict[str, dict[str, Any]]
    open_risks: dict[str, dict[str, Any]]
    last_status: dict[str, Any] | None

    def __init__(self) -> None:
        """State is set by ``Proposed.apply``; annotations above only declare it."""

    @staticmethod
    def id_for(key: str) -> UUID:
        return store_id("project", key)

    class Event(PmoEvent):
        pass

    class Snapshot(AggregateSnapshot):
        TOPIC = "pmo.project.snapshot"

    class Proposed(Event, PmoCreated):
        TOPIC = "pmo.project.proposed"
        portfolio_id: str
        program_id: str | None
        name: str
        sponsor: str
        budget_requested: Decimal
        planned_start: date
        planned_finish: date
        objectives: list[dict[str, Any]]
        priority: int | None

        def apply(self, p: Project) -> None:
            p.key = self.key
            p.portfolio_id = self.portfolio_id
            p.program_id = self.program_id
            p.name = self.name
            p.sponsor = self.sponsor
            p.budget_requested = self.budget_requested
            p.planned_start = self.planned_start
            p.planned_finish = self.planned_finish
            p.baseline_finish = None
            p.objectives = list(self.objectives)
            p.priority = self.priority
            p.state = S.PROPOSED
            p.manager_id = None
            p.approved_budget = None
            p.actual_cost = Decimal(0)
            p.forecast_eac = None
            p.started_on = None
            p.finished_on = None
            p.milestones = {}
            p.open_risks = {}
            p.last_status = None

    class Approved(Event):
        TOPIC = "pmo.project.approved"
        approved_budget: Decimal
        approver: str

        def apply(self, p: Project) -> None:
            p.state = S.APPROVED
            p.approved_budget = self.approved_budget
            p.baseline_finish = p.planned_finish

    class Rejected(Event):
        TOPIC = "pmo.project.rejected"
        reason: str

        def apply(self, p: Project) -> None:
            p.state = S.REJECTED

    class ManagerAssigned(Event):
        TOPIC = "pmo.project.manager_assigned"
        manager_id: str

        def apply(self, p: Project) -> None:
            p.manager_id = self.manager_id

    class Started(Event):
        TOPIC = "pmo.project.started"
        started_on: date

        def apply(self, p: Project) -> None:
            p.state = S.ACTIVE
            p.started_on = self.started_on

    class PutOnHold(Event):
        TOPIC = "pmo.project.put_on_hold"
        reason: str

        def apply(self, p: Project) -> None:
            p.state = S.ON_HOLD

    class Resumed(Event):
        TOPIC = "pmo.project.resumed"

        def apply(self, p: Project) -> None:
            p.state = S.ACTIVE

    class BudgetChanged(Event):
        TOPIC = "pmo.project.budget_changed"
        approved_budget: Decimal
        reason: str

        def apply(self, p: Project) -> None:
            p.approved_budget = self.approved_budget

    class CostRecorded(Event):
        TOPIC = "pmo.project.cost_recorded"
        amount: Decimal
        currency: str
        incurred_on: date
        category: str
        reference: str

        def apply(self, p: Project) -> None:
            p.actual_cost += self.amount

    class ForecastUpdated(Event):
        TOPIC = "pmo.project.forecast_updated"
        estimate_at_completion: Decimal

        def apply(self, p: Project) -> None:
            p.forecast_eac = self.estimate_at_completion

    class ScheduleChanged(Event):
        TOPIC = "pmo.project.schedule_changed"
        planned_finish: date
        reason: str

        def apply(self, p: Project) -> None:
            p.planned_finish = self.planned_finish

    class MilestonePlanned(Event):
        TOPIC = "pmo.project.milestone_planned"
        milestone_id: str
        name: str
        due: date

        def apply(self, p: Project) -> None:
            p.milestones[self.milestone_id] = {"name": self.name, "due": self.due,
                                               "achieved_on": None}

    class MilestoneAchieved(Event):
        TOPIC = "pmo.project.milestone_achieved"
        milestone_id: str
        achieved_on: date

        def apply(self, p: Project) -> None:
            p.milestones[self.milestone_id]["achieved_on"] = self.achieved_on

    class StatusReported(Event):
        """v2 added ``status_date``: the day the report describes (PMI's status date)."""

        TOPIC = "pmo.project.status_reported"
        class_version = 2
        overall: Colour
        scope: Colour
        schedule: Colour
        budget: Colour
        percent_complete: Decimal
        summary: str
        status_date: date

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """A v1 report described the day it was published: the default of v2 too.
            Applied on read only; the stored bytes (which the audit chain hashes) stay."""
            state["status_date"] = status_date_of(state["time"])

        def apply(self, p: Project) -> None:
            p.last_status = {
                "overall": self.overall, "scope": self.scope, "schedule": self.schedule,
                "budget": self.budget, "percent_complete": self.percent_complete,
            }

    class RiskRaised(Event):
        TOPIC = "pmo.project.risk_raised"
        risk_id: str
        title: str
        probability: Decimal
        impact: int

        def apply(self, p: Project) -> None:
            p.open_risks[self.risk_id] = {"title": self.title, "probability": self.probability,
                                          "impact": self.impact}

    class RiskClosed(Event):
        TOPIC = "pmo.project.risk_closed"
        risk_id: str
        resolution: str

        def apply(self, p: Project) -> None:
            del p.open_risks[self.risk_id]

    class Completed(Event):
        TOPIC = "pmo.project.completed"
        finished_on: date
        outcome: str | None

        def apply(self, p: Project) -> None:
            p.state = S.COMPLETED
            p.finished_on = self.finished_on

    class Cancelled(Event):
        TOPIC = "pmo.project.cancelled"
        reason: str

        def apply(self, p: Project) -> None:
            p.state = S.CANCELLED

    # -- commands -------------------------------------------------------------

    @classmethod
    def propose(
        cls,
        key: str,
        *,
        portfolio_id: str,
        program_id: str | None,
        name: str,
        sponsor: str,
        budget_requested: Decimal,
        planned_start: date,
        planned_finish: date,
        objectives: list[ObjectiveContribution],
        priority: int | None,
        envelope: Envelope,
    ) -> Project:
        _require_non_negative("budget_requested", budget_requested)
        if planned_finish < planned_start:
            raise InvalidValue(
                f"planned_finish {planned_finish} is before planned_start {planned_start}")
        if priority is not None and not 1 <= priority <= 5:
            raise InvalidValue(f"priority must be 1 to 5, got {priority}")
        for objective in objectives:
            _require_ratio("contribution", objective.contribution, allow_zero=True)
        return cls._create(
            cls.Proposed,
            id=cls.id_for(key),
            key=key,
            portfolio_id=portfolio_id,
            program_id=program_id,
            name=name,
            sponsor=sponsor,
            budget_requested=budget_requested,
            planned_start=planned_start,
            planned_finish=planned_finish,
            objectives=[{"objective_id": o.objective_id, "contribution": o.contribution}
                        for o in objectives],
            priority=priority,
            **envelope.as_kwargs(),
        )

    def approve(self, approved_budget: Decimal, approver: str, envelope: Envelope) -> None:
        self.require("approved")
        _require_non_negative("approved_budget", approved_budget)
        self._trigger(self.Approved, envelope, approved_budget=approved_budget, approver=approver)

    def reject(self, reason: str, envelope: Envelope) -> None:
        self.require("rejected")
        self._trigger(self.Rejected, envelope, reason=reason)

    def assign_manager(self, manager_id: str, envelope: Envelope) -> None:
        self.require("manager_assigned")
        self._trigger(self.ManagerAssigned, envelope, manager_id=manager_id)

    def start(self, started_on: date, envelope: Envelope) -> None:
        self.require("started")
        self._trigger(self.Started, envelope, started_on=started_on)

    def put_on_hold(self, reason: str, envelope: Envelope) -> None:
        self.require("put_on_hold")
        self._trigger(self.PutOnHold, envelope, reason=reason)

    def resume(self, envelope: Envelope) -> None:
        self.require("resumed")
        self._trigger(self.Resumed, envelope)

    def change_budget(self, approved_budget: Decimal, reason: str, envelope: Envelope) -> None:
        self.require("budget_changed")
        _require_non_negative("approved_budget", approved_budget)
        self._trigger(self.BudgetChanged, envelope, approved_budget=approved_budget, reason=reason)

    def record_cost(self, amount: Decimal, currency: str, incurred_on: date, category: str,
                    reference: str, envelope: Envelope) -> None:
        self.require("cost_recorded")
        if amount <= 0:
            raise InvalidValue(f"a cost amount must be greater than 0, got {amount}")
        self._trigger(self.CostRecorded, envelope, amount=amount, currency=currency,
                      incurred_on=incurred_on, category=category, reference=reference)

    def update_forecast(self, estimate_at_completion: Decimal, envelope: Envelope) -> None:
        self.require("forecast_updated")
        _require_non_negative("estimate_at_completion", estimate_at_completion)
        self._trigger(self.ForecastUpdated, envelope,
                      estimate_at_completion=estimate_at_completion)

    def change_schedule(self, planned_finish: date, reason: str, envelope: Envelope) -> None:
        self.require("schedule_changed")
        if planned_finish < self.planned_start:
            raise InvalidValue(
                f"planned_finish {planned_finish} is before planned_start {self.planned_start}")
        self._trigger(self.ScheduleChanged, envelope, planned_finish=planned_finish, reason=reason)

    def plan_milestone(self, milestone_id: str, name: str, due: date, envelope: Envelope) -> None:
        self.require("milestone_planned")
        existing = self.milestones.get(milestone_id)
        if existing is not None and existing["achieved_on"] is not None:
            raise InvalidValue(f"milestone '{milestone_id}' is already achieved")
        self._trigger(self.MilestonePlanned, envelope, milestone_id=milestone_id, name=name,
                      due=due)

    def achieve_milestone(self, milestone_id: str, achieved_on: date, envelope: Envelope) -> None:
        self.require("milestone_achieved")
        milestone = self.milestones.get(milestone_id)
        if milestone is None:
            raise InvalidValue(f"milestone '{milestone_id}' was never planned")
        if milestone["achieved_on"] is not None:
            raise InvalidValue(f"milestone '{milestone_id}' is already achieved")
        self._trigger(self.MilestoneAchieved, envelope, milestone_id=milestone_id,
                      achieved_on=achieved_on)

    def report_status(self, overall: Colour, scope: Colour, schedule: Colour, budget: Colour,
                      percent_complete: Decimal, summary: str, envelope: Envelope,
                      status_date: date | None = None) -> None:
        """``status_date``: the day the report describes; by default the day of its ``time``."""
        self.require("status_reported")
        if not Decimal(0) <= percent_complete <= Decimal(100):
            raise InvalidValue(f"percent_complete must be 0 to 100, got {percent_complete}")
        self._trigger(self.StatusReported, envelope, overall=overall, scope=scope,
                      schedule=schedule, budget=budget, percent_complete=percent_complete,
                      summary=summary,
                      status_date=status_date if status_date is not None
                      else status_date_of(envelope.time))

    def raise_risk(self, risk_id: str, title: str, probability: Decimal, impact: int,
                   envelope: Envelope) -> None:
        self.require("risk_raised")
        if risk_id in self.open_risks:
            raise InvalidValue(f"risk '{risk_id}' is already open")
        _require_ratio("probability", probability, allow_zero=True)
        if not 1 <= impact <= 5:
            raise InvalidValue(f"impact must be 1 to 5, got {impact}")
        self._trigger(self.RiskRaised, envelope, risk_id=risk_id, title=title,
                      probability=probability, impact=impact)

    def close_risk(self, risk_id: str, resolution: str, envelope: Envelope) -> None:
        self.require("risk_closed")
        if risk_id not in self.open_risks:
            raise InvalidValue(f"risk '{risk_id}' is not open")
        self._trigger(self.RiskClosed, envelope, risk_id=risk_id, resolution=resolution)

    def complete(self, finished_on: date, outcome: str | None, envelope: Envelope) -> None:
        self.require("completed")
        self._trigger(self.Completed, envelope, finished_on=finished_on, outcome=outcome)

    def cancel(self, reason: str, envelope: Envelope) -> None:
        self.require("cancelled")
        self._trigger(self.Cancelled, envelope, reason=reason)

    # -- helpers --------------------------------------------------------------

    def require(self, action: str) -> None:
        """Refuse ``action`` (an event name) that the lifecycle does not allow now."""
        if self.state not in ALLOWED_FROM[action]:
            raise TransitionNotAllowed(self.state.value, action)

    def _trigger(self, event_class: type[Project.Event], envelope: Envelope, **data: Any) -> None:
        trigger(self, event_class, envelope, **data)


def status_date_of(time: datetime) -> date:
    """The status date of a report that names none: the UTC day of its ``time`` (the
    publisher's instant, so a replay or an upcast on another day derives the same)."""
    return time.astimezone(UTC).date()


def _require_non_negative(name: str, amount: Decimal) -> None:
    if amount < 0:
        raise InvalidValue(f"{name} must not be negative, got {amount}")


def _require_ratio(name: str, value: Decimal, *, allow_zero: bool) -> None:
    low_ok = value >= 0 if allow_zero else value > 0
    if not (low_ok and value <= 1):
        bounds = "[0, 1]" if allow_zero else "(0, 1]"
        raise InvalidValue(f"{name} must be in {bounds}, got {value}")
