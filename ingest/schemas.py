"""The ``data`` of each inbound CloudEvent type (CONTRACT section 3), and its command.

Money is a decimal *string* (a JSON number is refused: floats lose cents);
unknown fields are refused so a publisher's typo is reported, not ignored. Every
field's limits (CONTRACT section 10) are the types of ``ingest.limits``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain import commands as c
from domain.catalogue import CATALOGUE, EventSpec
from domain.project import ObjectiveContribution
from domain.values import Colour, PmoType
from ingest.limits import (
    OBJECTIVES_MAX,
    Capacity,
    Currency,
    Day,
    Id,
    LongText,
    Money,
    OneToFive,
    Percent,
    PositiveMoney,
    Ratio,
    Text,
    Weight,
)

NonNegativeMoney = Money  # the pattern has no sign: every amount it takes is >= 0
Rag = Literal["green", "amber", "red"]


class Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PortfolioOpened(Data):
    name: Text
    pmo_type: Literal["supportive", "controlling", "directive"]
    currency: Currency
    budget_envelope: NonNegativeMoney
    owner: Text


class ObjectiveSet(Data):
    objective_id: Id
    title: Text
    weight: Weight


class ManagerRegistered(Data):
    name: Text
    capacity: Capacity
    grade: Text | None = None


class CapacityChanged(Data):
    capacity: Capacity


class LeftPool(Data):
    reason: LongText | None = None


class ProgramLaunched(Data):
    portfolio_id: Id
    name: Text
    manager_id: Id | None = None


class Objective(Data):
    objective_id: Id
    contribution: Ratio


class ProjectProposed(Data):
    portfolio_id: Id
    program_id: Id | None = None
    name: Text
    sponsor: Text
    budget_requested: NonNegativeMoney
    planned_start: Day
    planned_finish: Day
    objectives: Annotated[list[Objective], Field(max_length=OBJECTIVES_MAX)] = []
    priority: OneToFive | None = None


class ProjectApproved(Data):
    approved_budget: NonNegativeMoney
    approver: Text


class Reasoned(Data):
    reason: LongText


class ManagerAssigned(Data):
    manager_id: Id


class Started(Data):
    started_on: Day


class Nothing(Data):
    pass


class BudgetChanged(Data):
    approved_budget: NonNegativeMoney
    reason: LongText


class CostRecorded(Data):
    amount: PositiveMoney
    currency: Currency
    incurred_on: Day
    category: Text
    reference: Text


class ForecastUpdated(Data):
    estimate_at_completion: NonNegativeMoney


class ScheduleChanged(Data):
    planned_finish: Day
    reason: LongText


class MilestonePlanned(Data):
    milestone_id: Id
    name: Text
    due: Day


class MilestoneAchieved(Data):
    milestone_id: Id
    achieved_on: Day


class StatusReported(Data):
    overall: Rag
    scope: Rag
    schedule: Rag
    budget: Rag
    percent_complete: Percent
    summary: LongText
    # Added with the event's v2; optional so that every v1 publisher stays valid.
    status_date: Day | None = None


class RiskRaised(Data):
    risk_id: Id
    title: Text
    probability: Ratio
    impact: OneToFive


class RiskClosed(Data):
    risk_id: Id
    resolution: LongText


class Completed(Data):
    finished_on: Day
    outcome: LongText | None = None


ToCommand = Callable[[str, Any], c.Command]


def _fields(model: BaseModel) -> dict[str, Any]:
    return dict(model.__dict__)  # pydantic keeps exactly the declared fields there


def _plain(command: type[c.Command]) -> ToCommand:
    """Data fields map one to one onto the command's fields."""
    return lambda subject, data: command(subject, **_fields(data))


def _propose(subject: str, d: ProjectProposed) -> c.Command:
    fields = _fields(d)
    fields["objectives"] = tuple(ObjectiveContribution(o.objective_id, o.contribution)
                                 for o in d.objectives)
    return c.ProposeProject(subject, **fields)


def _status(subject: str, d: StatusReported) -> c.Command:
    return c.ReportStatus(subject, Colour(d.overall), Colour(d.scope), Colour(d.schedule),
                          Colour(d.budget), d.percent_complete, d.summary, d.status_date)


def _open(subject: str, d: PortfolioOpened) -> c.Command:
    return c.OpenPortfolio(subject, d.name, PmoType(d.pmo_type), d.currency, d.budget_envelope,
                           d.owner)


# The schema of the data that asks for each command (its CloudEvent type is the
# catalogue's: ``domain.catalogue``, which also gives the contract's order).
DATA: dict[type[c.Command], type[Data]] = {
    c.OpenPortfolio: PortfolioOpened,
    c.SetObjective: ObjectiveSet,
    c.RegisterManager: ManagerRegistered,
    c.ChangeCapacity: CapacityChanged,
    c.LeavePool: LeftPool,
    c.LaunchProgram: ProgramLaunched,
    c.ProposeProject: ProjectProposed,
    c.ApproveProject: ProjectApproved,
    c.RejectProject: Reasoned,
    c.AssignManager: ManagerAssigned,
    c.StartProject: Started,
    c.PutProjectOnHold: Reasoned,
    c.ResumeProject: Nothing,
    c.ChangeBudget: BudgetChanged,
    c.RecordCost: CostRecorded,
    c.UpdateForecast: ForecastUpdated,
    c.ChangeSchedule: ScheduleChanged,
    c.PlanMilestone: MilestonePlanned,
    c.AchieveMilestone: MilestoneAchieved,
    c.ReportStatus: StatusReported,
    c.RaiseRisk: RiskRaised,
    c.CloseRisk: RiskClosed,
    c.CompleteProject: Completed,
    c.CancelProject: Reasoned,
}

# Data that does not map one to one onto its command's fields (the rest: ``_plain``).
BUILDERS: dict[type[c.Command], ToCommand] = {
    c.OpenPortfolio: _open,
    c.ProposeProject: _propose,
    c.ReportStatus: _status,
}


def wire(catalogue: Iterable[EventSpec]) -> dict[str, tuple[type[Data], ToCommand]]:
    """CloudEvent type -> (schema of its data, how it becomes a command), in catalogue order.

    A command of the catalogue without a schema here fails at import, loudly."""
    return {spec.type: (DATA[spec.command], BUILDERS.get(spec.command) or _plain(spec.command))
            for spec in catalogue}


TYPES: dict[str, tuple[type[Data], ToCommand]] = wire(CATALOGUE)
