"""How the PMO decides each command, across aggregates, under its governance type.

Which function decides which command is said once, in ``domain.catalogue``
(``decide`` dispatches there). Pure: the aggregates come from an ``Aggregates`` port
(the application's unit of work, or an in-memory fake in unit tests). Every check
that can refuse runs before the first event is triggered on any aggregate, so a
refused command leaves every aggregate exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from eventsourcing.domain import BaseAggregate

from domain import commands as c
from domain.errors import (
    AlreadyExists,
    InvalidValue,
    ManagerNotInPool,
    ManagerRequired,
    UnknownAggregate,
    UnknownManager,
)
from domain.manager import Manager
from domain.portfolio import Portfolio
from domain.program import Program
from domain.project import Project
from domain.values import Envelope

A = TypeVar("A", Portfolio, Program, Project, Manager)


class Aggregates(Protocol):
    """Where decisions find aggregates by publisher id and hand over new ones."""

    def get(self, cls: type[A], key: str) -> A | None: ...

    def add(self, aggregate: BaseAggregate[Any]) -> None: ...


def require(aggs: Aggregates, cls: type[A], key: str) -> A:
    found = aggs.get(cls, key)
    if found is None:
        raise UnknownAggregate(cls.__name__.lower(), key)
    return found


def _absent(aggs: Aggregates, cls: type[A], key: str) -> None:
    if aggs.get(cls, key) is not None:
        raise AlreadyExists(cls.__name__.lower(), key)


def open_portfolio(cmd: c.OpenPortfolio, env: Envelope, aggs: Aggregates) -> Portfolio:
    _absent(aggs, Portfolio, cmd.subject)
    portfolio = Portfolio.open(cmd.subject, name=cmd.name, pmo_type=cmd.pmo_type,
                               currency=cmd.currency, budget_envelope=cmd.budget_envelope,
                               owner=cmd.owner, envelope=env)
    aggs.add(portfolio)
    return portfolio


def set_objective(cmd: c.SetObjective, env: Envelope, aggs: Aggregates) -> Portfolio:
    portfolio = require(aggs, Portfolio, cmd.subject)
    portfolio.set_objective(cmd.objective_id, cmd.title, cmd.weight, env)
    return portfolio


def register_manager(cmd: c.RegisterManager, env: Envelope, aggs: Aggregates) -> Manager:
    _absent(aggs, Manager, cmd.subject)
    manager = Manager.register(cmd.subject, name=cmd.name, capacity=cmd.capacity,
                               grade=cmd.grade, envelope=env)
    aggs.add(manager)
    return manager


def change_capacity(cmd: c.ChangeCapacity, env: Envelope, aggs: Aggregates) -> Manager:
    manager = require(aggs, Manager, cmd.subject)
    manager.change_capacity(cmd.capacity, env)
    return manager


def leave_pool(cmd: c.LeavePool, env: Envelope, aggs: Aggregates) -> Manager:
    manager = require(aggs, Manager, cmd.subject)
    manager.leave_pool(cmd.reason, env)
    return manager


def launch_program(cmd: c.LaunchProgram, env: Envelope, aggs: Aggregates) -> Program:
    _absent(aggs, Program, cmd.subject)
    portfolio = require(aggs, Portfolio, cmd.portfolio_id)
    if cmd.manager_id is not None and portfolio.pmo_type.holds_managers_accountable:
        _require_in_pool(aggs, cmd.manager_id)
    program = Program.launch(cmd.subject, portfolio_id=cmd.portfolio_id, name=cmd.name,
                             manager_id=cmd.manager_id, envelope=env)
    aggs.add(program)
    return program


def propose_project(cmd: c.ProposeProject, env: Envelope, aggs: Aggregates) -> Project:
    _absent(aggs, Project, cmd.subject)
    portfolio = require(aggs, Portfolio, cmd.portfolio_id)
    if cmd.program_id is not None:
        program = require(aggs, Program, cmd.program_id)
        if program.portfolio_id != cmd.portfolio_id:
            raise InvalidValue(f"program '{cmd.program_id}' belongs to portfolio "
                               f"'{program.portfolio_id}', not '{cmd.portfolio_id}'")
    for objective in cmd.objectives:
        portfolio.require_objective(objective.objective_id)
    project = Project.propose(
        cmd.subject, portfolio_id=cmd.portfolio_id, program_id=cmd.program_id, name=cmd.name,
        sponsor=cmd.sponsor, budget_requested=cmd.budget_requested,
        planned_start=cmd.planned_start, planned_finish=cmd.planned_finish,
        objectives=list(cmd.objectives), priority=cmd.priority, envelope=env)
    aggs.add(project)
    return project


def approve_project(cmd: c.ApproveProject, env: Envelope, aggs: Aggregates) -> Project:
    return _budgeted(aggs, cmd.subject, "approved", cmd.approved_budget, env,
                     lambda p: p.approve(cmd.approved_budget, cmd.approver, env))


def change_budget(cmd: c.ChangeBudget, env: Envelope, aggs: Aggregates) -> Project:
    return _budgeted(aggs, cmd.subject, "budget_changed", cmd.approved_budget, env,
                     lambda p: p.change_budget(cmd.approved_budget, cmd.reason, env))


def _budgeted(aggs: Aggregates, key: str, action: str, budget: Decimal, env: Envelope,
              record: Callable[[Project], None]) -> Project:
    """An event that sets the approved budget: it must fit the envelope, and commits there."""
    project = require(aggs, Project, key)
    project.require(action)
    portfolio = require(aggs, Portfolio, project.portfolio_id)
    portfolio.check_commitment(project.key, budget)
    record(project)
    portfolio.commit_budget(project.key, budget, env)
    return project


def reject_project(cmd: c.RejectProject, env: Envelope, aggs: Aggregates) -> Project:
    project = require(aggs, Project, cmd.subject)
    project.reject(cmd.reason, env)
    _release_manager(aggs, project, env)
    return project


def assign_manager(cmd: c.AssignManager, env: Envelope, aggs: Aggregates) -> Project:
    project = require(aggs, Project, cmd.subject)
    project.require("manager_assigned")
    portfolio = require(aggs, Portfolio, project.portfolio_id)
    accountable = portfolio.pmo_type.holds_managers_accountable
    new = _require_in_pool(aggs, cmd.manager_id) if accountable else aggs.get(
        Manager, cmd.manager_id)
    previous = project.manager_id
    if new is not None:
        new.check_take_on(project.key, accountable=accountable)
    # The subject's event first, as in every decision: a message's events are stored
    # subject first, so triggering them in that order keeps recording times rising with
    # positions (an as_of between them would show the manager holding a project that
    # has no manager yet).
    project.assign_manager(cmd.manager_id, env)
    if new is not None:
        new.take_on(project.key, accountable=accountable, envelope=env)
    if previous is not None and previous != cmd.manager_id:
        old = aggs.get(Manager, previous)
        if old is not None:
            old.release(project.key, env)
    return project


def start_project(cmd: c.StartProject, env: Envelope, aggs: Aggregates) -> Project:
    project = require(aggs, Project, cmd.subject)
    project.require("started")
    portfolio = require(aggs, Portfolio, project.portfolio_id)
    if portfolio.pmo_type.holds_managers_accountable and project.manager_id is None:
        raise ManagerRequired("a directive PMO starts a project only once a manager is assigned")
    project.start(cmd.started_on, env)
    return project


def record_cost(cmd: c.RecordCost, env: Envelope, aggs: Aggregates) -> Project:
    project = require(aggs, Project, cmd.subject)
    project.require("cost_recorded")
    require(aggs, Portfolio, project.portfolio_id).require_currency(cmd.currency)
    project.record_cost(cmd.amount, cmd.currency, cmd.incurred_on, cmd.category,
                        cmd.reference, env)
    return project


def complete_project(cmd: c.CompleteProject, env: Envelope, aggs: Aggregates) -> Project:
    project = require(aggs, Project, cmd.subject)
    project.complete(cmd.finished_on, cmd.outcome, env)
    _release_manager(aggs, project, env)
    return project


def cancel_project(cmd: c.CancelProject, env: Envelope, aggs: Aggregates) -> Project:
    project = require(aggs, Project, cmd.subject)
    project.require("cancelled")
    portfolio = require(aggs, Portfolio, project.portfolio_id)
    project.cancel(cmd.reason, env)
    portfolio.release_budget(project.key, env)
    _release_manager(aggs, project, env)
    return project


def on_project(apply: Callable[[Project, Any, Envelope], None]) -> Callable[
        [Any, Envelope, Aggregates], Project]:
    """A command that touches only its project."""

    def decide(cmd: Any, env: Envelope, aggs: Aggregates) -> Project:
        project = require(aggs, Project, cmd.subject)
        apply(project, cmd, env)
        return project

    return decide


def _require_in_pool(aggs: Aggregates, manager_id: str) -> Manager:
    manager = aggs.get(Manager, manager_id)
    if manager is None:
        raise UnknownManager(manager_id)
    if not manager.in_pool:
        raise ManagerNotInPool(f"manager '{manager_id}' is not in the PMO's pool")
    return manager


def _release_manager(aggs: Aggregates, project: Project, env: Envelope) -> None:
    if project.manager_id is not None:
        manager = aggs.get(Manager, project.manager_id)
        if manager is not None:
            manager.release(project.key, env)


# How a command is decided (``domain.catalogue`` says which decides which command).
Decision = Callable[[Any, Envelope, Aggregates], BaseAggregate[Any]]
