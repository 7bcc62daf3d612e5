"""Every (state, event) pair of the project lifecycle: allowed ones record, others are refused.

The expected table is written here from CONTRACT section 2, independently of the domain's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest

from domain import commands as c
from domain.errors import TransitionNotAllowed
from domain.project import Project
from domain.values import PmoType, ProjectState
from tests.unit.fakes import FakeAggregates, proposal, status, world

RUNNING = {"approved", "active", "on_hold"}
NON_TERMINAL = {"proposed"} | RUNNING
EXPECTED_FROM: dict[str, set[str]] = {
    "approved": {"proposed"}, "rejected": {"proposed"}, "started": {"approved"},
    "put_on_hold": {"active"}, "completed": {"active"}, "resumed": {"on_hold"},
    "cancelled": NON_TERMINAL, "manager_assigned": NON_TERMINAL,
    **{e: RUNNING for e in ("budget_changed", "cost_recorded", "forecast_updated",
                            "schedule_changed", "milestone_planned", "milestone_achieved",
                            "status_reported", "risk_raised", "risk_closed")},
}
STATES = [s.value for s in ProjectState]

# How to bring project "P" into each state, from nothing.
PATHS: dict[str, list[c.Command]] = {
    "proposed": [],
    "approved": [c.ApproveProject("P", Decimal("100"), "board")],
    "rejected": [c.RejectProject("P", "no business case")],
    "cancelled": [c.CancelProject("P", "sponsor left")],
}
PATHS["active"] = [*PATHS["approved"], c.StartProject("P", date(2026, 2, 1))]
PATHS["on_hold"] = [*PATHS["active"], c.PutProjectOnHold("P", "funding review")]
PATHS["completed"] = [*PATHS["active"], c.CompleteProject("P", date(2026, 11, 1))]

Prepare = Callable[[FakeAggregates], None]


def _command(event: str) -> tuple[list[c.Command], c.Command]:
    """The command recording ``event`` on P, and what must precede it in a running state."""
    plan = c.PlanMilestone("P", "MS1", "Design signed off", date(2026, 5, 1))
    risk = c.RaiseRisk("P", "R1", "Vendor delay", Decimal("0.3"), 3)
    return {
        "approved": ([], c.ApproveProject("P", Decimal("100"), "board")),
        "rejected": ([], c.RejectProject("P", "no")),
        "started": ([], c.StartProject("P", date(2026, 2, 1))),
        "put_on_hold": ([], c.PutProjectOnHold("P", "pause")),
        "resumed": ([], c.ResumeProject("P")),
        "completed": ([], c.CompleteProject("P", date(2026, 11, 1))),
        "cancelled": ([], c.CancelProject("P", "stop")),
        "manager_assigned": ([], c.AssignManager("P", "M1")),
        "budget_changed": ([], c.ChangeBudget("P", Decimal("120"), "scope")),
        "cost_recorded": ([], c.RecordCost("P", Decimal("10"), "EUR", date(2026, 3, 1),
                                           "labour", "INV-1")),
        "forecast_updated": ([], c.UpdateForecast("P", Decimal("130"))),
        "schedule_changed": ([], c.ChangeSchedule("P", date(2027, 1, 31), "late vendor")),
        "milestone_planned": ([], plan),
        "milestone_achieved": ([plan], c.AchieveMilestone("P", "MS1", date(2026, 5, 2))),
        "status_reported": ([], c.ReportStatus("P", **status())),
        "risk_raised": ([], risk),
        "risk_closed": ([risk], c.CloseRisk("P", "R1", "vendor delivered")),
    }[event]


def project_in(state: str) -> FakeAggregates:
    aggs = world(PmoType.SUPPORTIVE)
    aggs.run(proposal("P"))
    for command in PATHS[state]:
        aggs.run(command)
    project = aggs.get(Project, "P")
    assert project is not None and project.state.value == state
    return aggs


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("event", sorted(EXPECTED_FROM))
def test_lifecycle_allows_exactly_the_contract_transitions(state: str, event: str) -> None:
    aggs = project_in(state)
    prerequisites, command = _command(event)
    project = aggs.get(Project, "P")
    assert project is not None
    if state in EXPECTED_FROM[event]:
        for step in prerequisites:
            aggs.run(step)
        version = project.version
        aggs.run(command)
        assert project.version == version + 1
        assert f"pmo.project.{event}" == project.pending_events[-1].TOPIC
    else:
        version = project.version
        with pytest.raises(TransitionNotAllowed) as refused:
            aggs.run(command)
        assert f"'{state}'" in refused.value.reason and f"'{event}'" in refused.value.reason
        assert project.version == version  # nothing recorded, nothing changed


def test_resume_returns_an_on_hold_project_to_active() -> None:
    aggs = project_in("on_hold")
    aggs.run(c.ResumeProject("P"))
    project = aggs.get(Project, "P")
    assert project is not None and project.state is ProjectState.ACTIVE


def test_approval_sets_the_baseline_finish_that_later_schedule_changes_keep() -> None:
    aggs = project_in("approved")
    aggs.run(c.ChangeSchedule("P", date(2027, 3, 31), "scope added"))
    project = aggs.get(Project, "P")
    assert project is not None
    assert project.baseline_finish == date(2026, 12, 31)
    assert project.planned_finish == date(2027, 3, 31)
