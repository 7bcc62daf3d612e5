"""The PMO's governance by type (CONTRACT section 2), and the values it refuses."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from domain import commands as c
from domain.errors import (
    AlreadyExists,
    CurrencyMismatch,
    InvalidValue,
    ManagerNotInPool,
    ManagerRequired,
    OverBudgetEnvelope,
    OverCapacity,
    UnknownAggregate,
)
from domain.manager import Manager
from domain.portfolio import Portfolio
from domain.project import ObjectiveContribution, Project
from domain.values import PmoType, ProjectState
from tests.unit.fakes import FakeAggregates, proposal, world

ENVELOPE_TYPES = [PmoType.CONTROLLING, PmoType.DIRECTIVE]


def approve(aggs: FakeAggregates, key: str, budget: str) -> None:
    aggs.run(proposal(key))
    aggs.run(c.ApproveProject(key, Decimal(budget), "board"))


def activate(aggs: FakeAggregates, key: str, manager: str = "M1") -> None:
    approve(aggs, key, "10")
    aggs.run(c.AssignManager(key, manager))
    aggs.run(c.StartProject(key, date(2026, 2, 1)))


# -- budget envelope ---------------------------------------------------------------------

@pytest.mark.parametrize("pmo_type", ENVELOPE_TYPES)
def test_envelope_pmo_refuses_approval_beyond_what_is_left(pmo_type: PmoType) -> None:
    aggs = world(pmo_type, envelope_amount="1000")
    approve(aggs, "A", "700")
    aggs.run(proposal("B"))
    with pytest.raises(OverBudgetEnvelope) as refused:
        aggs.run(c.ApproveProject("B", Decimal("300.01"), "board"))
    assert "300.01" in refused.value.reason and "300" in refused.value.reason
    aggs.run(c.ApproveProject("B", Decimal("300.00"), "board"))  # exactly what is left fits


def test_supportive_pmo_approves_beyond_the_envelope() -> None:
    aggs = world(PmoType.SUPPORTIVE, envelope_amount="1000")
    approve(aggs, "A", "5000")
    project = aggs.get(Project, "A")
    assert project is not None and project.state is ProjectState.APPROVED


@pytest.mark.parametrize("pmo_type", ENVELOPE_TYPES)
def test_envelope_counts_completed_but_frees_cancelled_and_ignores_rejected(
        pmo_type: PmoType) -> None:
    aggs = world(pmo_type, envelope_amount="100")
    activate(aggs, "DONE")  # approved at 10
    aggs.run(c.CompleteProject("DONE", date(2026, 6, 1)))
    approve(aggs, "GONE", "90")
    aggs.run(c.CancelProject("GONE", "descoped"))
    aggs.run(proposal("NO"))
    aggs.run(c.RejectProject("NO", "no case"))
    portfolio = aggs.get(Portfolio, "PF")
    assert portfolio is not None and portfolio.remaining == Decimal("90")
    approve(aggs, "NEXT", "90")
    with pytest.raises(OverBudgetEnvelope):
        approve(aggs, "MORE", "0.01")


@pytest.mark.parametrize("pmo_type", ENVELOPE_TYPES)
def test_budget_change_must_fit_the_envelope_counting_its_own_budget(pmo_type: PmoType) -> None:
    aggs = world(pmo_type, envelope_amount="1000")
    approve(aggs, "A", "600")
    approve(aggs, "B", "300")
    aggs.run(c.ChangeBudget("A", Decimal("700"), "scope"))  # 700 + 300 = 1000 fits
    with pytest.raises(OverBudgetEnvelope):
        aggs.run(c.ChangeBudget("B", Decimal("300.01"), "more scope"))
    project = aggs.get(Project, "B")
    assert project is not None and project.approved_budget == Decimal("300")


# -- managers ----------------------------------------------------------------------------

def test_directive_pmo_refuses_start_without_manager() -> None:
    aggs = world(PmoType.DIRECTIVE)
    approve(aggs, "P", "10")
    with pytest.raises(ManagerRequired):
        aggs.run(c.StartProject("P", date(2026, 2, 1)))


@pytest.mark.parametrize("pmo_type", [PmoType.SUPPORTIVE, PmoType.CONTROLLING])
def test_other_pmos_start_without_manager(pmo_type: PmoType) -> None:
    aggs = world(pmo_type)
    approve(aggs, "P", "10")
    aggs.run(c.StartProject("P", date(2026, 2, 1)))


def test_directive_pmo_assigns_only_managers_in_its_pool() -> None:
    aggs = world(PmoType.DIRECTIVE)
    aggs.run(proposal("P"))
    with pytest.raises(ManagerNotInPool):
        aggs.run(c.AssignManager("P", "STRANGER"))
    aggs.run(c.LeavePool("M1", "retired"))
    with pytest.raises(ManagerNotInPool):
        aggs.run(c.AssignManager("P", "M1"))


def test_supportive_pmo_records_any_manager() -> None:
    aggs = world(PmoType.SUPPORTIVE)
    aggs.run(proposal("P"))
    aggs.run(c.AssignManager("P", "EXTERNAL-CONTRACTOR"))
    project = aggs.get(Project, "P")
    assert project is not None and project.manager_id == "EXTERNAL-CONTRACTOR"


def test_directive_pmo_refuses_assignment_beyond_capacity_of_non_terminal_projects() -> None:
    aggs = world(PmoType.DIRECTIVE)  # M1 has capacity 2
    activate(aggs, "P1")
    activate(aggs, "P2")
    aggs.run(proposal("P3"))
    with pytest.raises(OverCapacity) as refused:
        aggs.run(c.AssignManager("P3", "M1"))
    assert "M1" in refused.value.reason
    aggs.run(c.CompleteProject("P1", date(2026, 6, 1)))  # terminal: frees a slot
    aggs.run(c.AssignManager("P3", "M1"))
    manager = aggs.get(Manager, "M1")
    assert manager is not None and sorted(manager.projects) == ["P2", "P3"]


def test_reassignment_moves_the_project_between_managers() -> None:
    aggs = world(PmoType.DIRECTIVE)
    aggs.run(c.RegisterManager("M2", "Manager Two", 1))
    aggs.run(proposal("P"))
    aggs.run(c.AssignManager("P", "M1"))
    aggs.run(c.AssignManager("P", "M2"))
    m1, m2 = aggs.get(Manager, "M1"), aggs.get(Manager, "M2")
    assert m1 is not None and m2 is not None
    assert m1.projects == [] and m2.projects == ["P"]


@pytest.mark.parametrize("ending", ["rejected", "cancelled"])
def test_ending_a_project_releases_its_manager(ending: str) -> None:
    aggs = world(PmoType.DIRECTIVE)
    aggs.run(proposal("P"))
    aggs.run(c.AssignManager("P", "M1"))
    aggs.run(c.RejectProject("P", "no") if ending == "rejected" else c.CancelProject("P", "no"))
    manager = aggs.get(Manager, "M1")
    assert manager is not None and manager.projects == []


# -- money, references, values -----------------------------------------------------------

def test_cost_in_another_currency_is_refused() -> None:
    aggs = world(PmoType.SUPPORTIVE)
    approve(aggs, "P", "10")
    with pytest.raises(CurrencyMismatch) as refused:
        aggs.run(c.RecordCost("P", Decimal("5"), "USD", date(2026, 3, 1), "labour", "INV"))
    assert "USD" in refused.value.reason and "EUR" in refused.value.reason


@pytest.mark.parametrize("amount", ["0", "-1"])
def test_cost_amount_must_be_positive(amount: str) -> None:
    aggs = world(PmoType.SUPPORTIVE)
    approve(aggs, "P", "10")
    with pytest.raises(InvalidValue):
        aggs.run(c.RecordCost("P", Decimal(amount), "EUR", date(2026, 3, 1), "labour", "INV"))


def test_costs_add_up_exactly_in_decimal() -> None:
    aggs = world(PmoType.SUPPORTIVE)
    approve(aggs, "P", "10")
    for _ in range(10):
        aggs.run(c.RecordCost("P", Decimal("0.10"), "EUR", date(2026, 3, 1), "labour", "INV"))
    project = aggs.get(Project, "P")
    assert project is not None and project.actual_cost == Decimal("1.00")


def test_unknown_portfolio_program_project_and_objective_are_refused() -> None:
    aggs = world(PmoType.CONTROLLING)
    with pytest.raises(UnknownAggregate):
        aggs.run(proposal("P", portfolio_id="NOPE"))
    with pytest.raises(UnknownAggregate):
        aggs.run(proposal("P", program_id="NOPE"))
    with pytest.raises(UnknownAggregate):
        aggs.run(proposal("P", objectives=(ObjectiveContribution("NOPE", Decimal("0.5")),)))
    with pytest.raises(UnknownAggregate):
        aggs.run(c.ApproveProject("GHOST", Decimal("1"), "board"))


def test_program_must_belong_to_the_projects_portfolio() -> None:
    aggs = world(PmoType.CONTROLLING)
    aggs.run(c.OpenPortfolio("OTHER", "Other", PmoType.SUPPORTIVE, "EUR", Decimal(1), "o"))
    aggs.run(c.LaunchProgram("PRG", "OTHER", "Program"))
    with pytest.raises(InvalidValue):
        aggs.run(proposal("P", program_id="PRG"))


def test_objectives_set_on_the_portfolio_can_be_referenced() -> None:
    aggs = world(PmoType.CONTROLLING)
    aggs.run(c.SetObjective("PF", "OBJ", "Grow", Decimal("0.4")))
    aggs.run(proposal("P", objectives=(ObjectiveContribution("OBJ", Decimal("1")),)))


def test_ids_are_never_reused() -> None:
    aggs = world(PmoType.SUPPORTIVE)
    aggs.run(proposal("P"))
    with pytest.raises(AlreadyExists):
        aggs.run(proposal("P"))
    with pytest.raises(AlreadyExists):
        aggs.run(c.RegisterManager("M1", "Again", 1))


@pytest.mark.parametrize("command", [
    c.SetObjective("PF", "O", "t", Decimal("0")),
    c.SetObjective("PF", "O", "t", Decimal("1.01")),
    c.RegisterManager("M9", "m", 0),
    c.ChangeCapacity("M1", 0),
])
def test_out_of_range_values_are_refused(command: c.Command) -> None:
    aggs = world(PmoType.SUPPORTIVE)
    with pytest.raises(InvalidValue):
        aggs.run(command)


def test_a_refused_command_leaves_every_aggregate_unchanged() -> None:
    aggs = world(PmoType.DIRECTIVE, envelope_amount="50")
    aggs.run(proposal("P"))
    before = {i: a.version for i, a in aggs.by_id.items()}
    with pytest.raises(OverBudgetEnvelope):
        aggs.run(c.ApproveProject("P", Decimal("51"), "board"))
    assert {i: a.version for i, a in aggs.by_id.items()} == before
