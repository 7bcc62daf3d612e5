"""What a publisher asks the PMO to record: one command per inbound event type.

Plain frozen dataclasses with domain values; the edge (``ingest/``) builds them
from validated CloudEvents. ``subject`` is the publisher's id of the aggregate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from domain.project import ObjectiveContribution
from domain.values import Colour, PmoType


@dataclass(frozen=True, slots=True)
class Command:
    subject: str


@dataclass(frozen=True, slots=True)
class OpenPortfolio(Command):
    name: str
    pmo_type: PmoType
    currency: str
    budget_envelope: Decimal
    owner: str


@dataclass(frozen=True, slots=True)
class SetObjective(Command):
    objective_id: str
    title: str
    weight: Decimal


@dataclass(frozen=True, slots=True)
class RegisterManager(Command):
    name: str
    capacity: int
    grade: str | None = None


@dataclass(frozen=True, slots=True)
class ChangeCapacity(Command):
    capacity: int


@dataclass(frozen=True, slots=True)
class LeavePool(Command):
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class LaunchProgram(Command):
    portfolio_id: str
    name: str
    manager_id: str | None = None


@dataclass(frozen=True, slots=True)
class ProposeProject(Command):
    portfolio_id: str
    name: str
    sponsor: str
    budget_requested: Decimal
    planned_start: date
    planned_finish: date
    program_id: str | None = None
    objectives: tuple[ObjectiveContribution, ...] = ()
    priority: int | None = None


@dataclass(frozen=True, slots=True)
class ApproveProject(Command):
    approved_budget: Decimal
    approver: str


@dataclass(frozen=True, slots=True)
class RejectProject(Command):
    reason: str


@dataclass(frozen=True, slots=True)
class AssignManager(Command):
    manager_id: str


@dataclass(frozen=True, slots=True)
class StartProject(Command):
    started_on: date


@dataclass(frozen=True, slots=True)
class PutProjectOnHold(Command):
    reason: str


@dataclass(frozen=True, slots=True)
class ResumeProject(Command):
    pass


@dataclass(frozen=True, slots=True)
class ChangeBudget(Command):
    approved_budget: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class RecordCost(Command):
    amount: Decimal
    currency: str
    incurred_on: date
    category: str
    reference: str


@dataclass(frozen=True, slots=True)
class UpdateForecast(Command):
    estimate_at_completion: Decimal


@dataclass(frozen=True, slots=True)
class ChangeSchedule(Command):
    planned_finish: date
    reason: str


@dataclass(frozen=True, slots=True)
class PlanMilestone(Command):
    milestone_id: str
    name: str
    due: date


@dataclass(frozen=True, slots=True)
class AchieveMilestone(Command):
    milestone_id: str
    achieved_on: date


@dataclass(frozen=True, slots=True)
class ReportStatus(Command):
    overall: Colour
    scope: Colour
    schedule: Colour
    budget: Colour
    percent_complete: Decimal
    summary: str
    status_date: date | None = None  # v2 of the event; absent: the day of its time


@dataclass(frozen=True, slots=True)
class RaiseRisk(Command):
    risk_id: str
    title: str
    probability: Decimal
    impact: int


@dataclass(frozen=True, slots=True)
class CloseRisk(Command):
    risk_id: str
    resolution: str


@dataclass(frozen=True, slots=True)
class CompleteProject(Command):
    finished_on: date
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class CancelProject(Command):
    reason: str
