"""Every inbound event type, said once: its command, the domain event it records, its decision.

One ``EventSpec`` per CloudEvent type of CONTRACT section 3. The type string is the
domain event's own ``TOPIC`` (a stored topic is pinned to its CloudEvent type, so the
two can never be spelled apart), and the rest of the service is wired from here:

- the domain dispatches commands through ``decide`` (below);
- ingest (``ingest.schemas``) keys the ``data`` model of each type by its command class;
- the views (``projections.folds``) key their folds by the domain event classes.

The domain may not import pydantic or the read side (``tests/unit/test_architecture``),
so the data models and the folds sit in their layers, keyed by the classes named here;
``tests/unit/test_event_catalogue`` fails when any of them disagrees with this list.

``CONSEQUENCES`` are the domain events no publisher sends: a decision records them on
another aggregate (or an operator's action does), each with why it exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.domain import BaseAggregate

from domain import commands as c
from domain import decisions as d
from domain.base import PmoCreated, PmoEvent
from domain.manager import Manager
from domain.operations import Operation
from domain.portfolio import Portfolio
from domain.program import Program
from domain.project import Project
from domain.values import Envelope

# The aggregates whose events the store holds (their nested events are the domain's).
AGGREGATES: tuple[type[BaseAggregate[UUID]], ...] = (Portfolio, Program, Project, Manager,
                                                     Operation)


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One inbound event type: what it asks (``command``), the fact that answers it
    (``event``, whose topic is the CloudEvent type) and who decides (``decide``)."""

    command: type[c.Command]
    event: type[PmoEvent]
    decide: d.Decision
    type: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", topic_of(self.event))


def topic_of(event: type[PmoEvent]) -> str:
    """The stored topic of a domain event class (its explicit ``TOPIC``)."""
    topic: str = vars(event)["TOPIC"]  # its own, never one inherited from a base class
    return topic


P = Project
# In the contract's order (CONTRACT section 3): /v1/schemas and the AsyncAPI list follow it.
CATALOGUE: tuple[EventSpec, ...] = (
    EventSpec(c.OpenPortfolio, Portfolio.Opened, d.open_portfolio),
    EventSpec(c.SetObjective, Portfolio.ObjectiveSet, d.set_objective),
    EventSpec(c.RegisterManager, Manager.Registered, d.register_manager),
    EventSpec(c.ChangeCapacity, Manager.CapacityChanged, d.change_capacity),
    EventSpec(c.LeavePool, Manager.LeftPool, d.leave_pool),
    EventSpec(c.LaunchProgram, Program.Launched, d.launch_program),
    EventSpec(c.ProposeProject, P.Proposed, d.propose_project),
    EventSpec(c.ApproveProject, P.Approved, d.approve_project),
    EventSpec(c.RejectProject, P.Rejected, d.reject_project),
    EventSpec(c.AssignManager, P.ManagerAssigned, d.assign_manager),
    EventSpec(c.StartProject, P.Started, d.start_project),
    EventSpec(c.PutProjectOnHold, P.PutOnHold,
              d.on_project(lambda p, cmd, env: p.put_on_hold(cmd.reason, env))),
    EventSpec(c.ResumeProject, P.Resumed, d.on_project(lambda p, cmd, env: p.resume(env))),
    EventSpec(c.ChangeBudget, P.BudgetChanged, d.change_budget),
    EventSpec(c.RecordCost, P.CostRecorded, d.record_cost),
    EventSpec(c.UpdateForecast, P.ForecastUpdated, d.on_project(
        lambda p, cmd, env: p.update_forecast(cmd.estimate_at_completion, env))),
    EventSpec(c.ChangeSchedule, P.ScheduleChanged, d.on_project(
        lambda p, cmd, env: p.change_schedule(cmd.planned_finish, cmd.reason, env))),
    EventSpec(c.PlanMilestone, P.MilestonePlanned, d.on_project(
        lambda p, cmd, env: p.plan_milestone(cmd.milestone_id, cmd.name, cmd.due, env))),
    EventSpec(c.AchieveMilestone, P.MilestoneAchieved, d.on_project(
        lambda p, cmd, env: p.achieve_milestone(cmd.milestone_id, cmd.achieved_on, env))),
    EventSpec(c.ReportStatus, P.StatusReported, d.on_project(
        lambda p, cmd, env: p.report_status(cmd.overall, cmd.scope, cmd.schedule, cmd.budget,
                                            cmd.percent_complete, cmd.summary, env,
                                            cmd.status_date))),
    EventSpec(c.RaiseRisk, P.RiskRaised, d.on_project(
        lambda p, cmd, env: p.raise_risk(cmd.risk_id, cmd.title, cmd.probability, cmd.impact,
                                         env))),
    EventSpec(c.CloseRisk, P.RiskClosed, d.on_project(
        lambda p, cmd, env: p.close_risk(cmd.risk_id, cmd.resolution, env))),
    EventSpec(c.CompleteProject, P.Completed, d.complete_project),
    EventSpec(c.CancelProject, P.Cancelled, d.cancel_project),
)

# Domain events no CloudEvent type asks for directly, and why each exists.
CONSEQUENCES: dict[type[PmoEvent], str] = {
    Portfolio.BudgetCommitted: "the envelope's bookkeeping when a project's approved budget "
                               "is set (approved, budget_changed)",
    Portfolio.BudgetReleased: "the envelope's bookkeeping when a project is cancelled",
    Manager.ProjectAssigned: "the manager's side of pmo.project.manager_assigned",
    Manager.ProjectReleased: "the manager's side of a reassignment or a terminal project",
    Operation.QuarantineRetried: "an operator re-applied a quarantined aggregate's events",
    Operation.QuarantineEvicted: "an operator dropped a quarantined aggregate's view rows",
}

BY_COMMAND: dict[type[c.Command], EventSpec] = {spec.command: spec for spec in CATALOGUE}
DECISIONS: dict[type[c.Command], d.Decision] = {spec.command: spec.decide for spec in CATALOGUE}


def domain_events() -> Iterator[type[PmoEvent]]:
    """Every event class the store can hold: those nested in ``AGGREGATES`` with a topic."""
    for aggregate in AGGREGATES:
        for member in vars(aggregate).values():
            if isinstance(member, type) and issubclass(member, PmoEvent) and (
                    "TOPIC" in vars(member)):
                yield member


def aggregate_of(event: type[PmoEvent]) -> type[BaseAggregate[UUID]]:
    """The aggregate class an event class is nested in."""
    for aggregate in AGGREGATES:
        if vars(aggregate).get(event.__name__) is event:
            return aggregate
    raise LookupError(f"{event.__qualname__} is nested in none of {AGGREGATES}")


# Commands that create an aggregate (their event is its first): a batch asks the store
# once which of them already exist.
CREATES: dict[type[c.Command], type[BaseAggregate[UUID]]] = {
    spec.command: aggregate_of(spec.event) for spec in CATALOGUE
    if issubclass(spec.event, PmoCreated)}


def decide(command: c.Command, envelope: Envelope, aggs: d.Aggregates) -> BaseAggregate[Any]:
    """Run ``command``; return the aggregate it is about (its newest event is the answer)."""
    return DECISIONS[type(command)](command, envelope, aggs)
