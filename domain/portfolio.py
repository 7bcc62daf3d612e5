"""The portfolio: a PMO's budget envelope, currency and strategic objectives.

It is the consistency boundary of the envelope rule: every approval and budget
change commits its amount here, so two concurrent approvals conflict on the
portfolio's version instead of both fitting a stale remainder.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import BaseAggregate
from eventsourcing.domain import Snapshot as AggregateSnapshot

from domain.base import PmoCreated, PmoEvent, store_id, trigger
from domain.errors import CurrencyMismatch, InvalidValue, OverBudgetEnvelope, UnknownAggregate
from domain.values import Envelope, PmoType


class Portfolio(BaseAggregate[UUID]):
    TOPIC = "pmo.portfolio"

    key: str
    name: str
    pmo_type: PmoType
    currency: str
    budget_envelope: Decimal
    owner: str
    objectives: dict[str, dict[str, Any]]
    commitments: dict[str, Decimal]
    committed: Decimal

    def __init__(self) -> None:
        """State is set by ``Opened.apply``; annotations above only declare it."""

    @staticmethod
    def id_for(key: str) -> UUID:
        return store_id("portfolio", key)

    class Event(PmoEvent):
        pass

    class Snapshot(AggregateSnapshot):
        TOPIC = "pmo.portfolio.snapshot"

    class Opened(Event, PmoCreated):
        TOPIC = "pmo.portfolio.opened"
        name: str
        pmo_type: PmoType
        currency: str
        budget_envelope: Decimal
        owner: str

        def apply(self, p: Portfolio) -> None:
            p.key = self.key
            p.name = self.name
            p.pmo_type = self.pmo_type
            p.currency = self.currency
            p.budget_envelope = self.budget_envelope
            p.owner = self.owner
            p.objectives = {}
            p.commitments = {}
            p.committed = Decimal(0)

    class ObjectiveSet(Event):
        TOPIC = "pmo.portfolio.objective_set"
        objective_id: str
        title: str
        weight: Decimal

        def apply(self, p: Portfolio) -> None:
            p.objectives[self.objective_id] = {"title": self.title, "weight": self.weight}

    class BudgetCommitted(Event):
        """A project's approved budget now counts against the envelope (replacing any earlier)."""

        TOPIC = "pmo.portfolio.budget_committed"
        project_id: str
        amount: Decimal

        def apply(self, p: Portfolio) -> None:
            p.committed += self.amount - p.commitments.get(self.project_id, Decimal(0))
            p.commitments[self.project_id] = self.amount

    class BudgetReleased(Event):
        """A cancelled project's budget no longer counts against the envelope."""

        TOPIC = "pmo.portfolio.budget_released"
        project_id: str

        def apply(self, p: Portfolio) -> None:
            p.committed -= p.commitments.pop(self.project_id)

    @classmethod
    def open(cls, key: str, *, name: str, pmo_type: PmoType, currency: str,
             budget_envelope: Decimal, owner: str, envelope: Envelope) -> Portfolio:
        if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
            raise InvalidValue(f"currency must be an ISO 4217 code such as EUR, got {currency!r}")
        if budget_envelope < 0:
            raise InvalidValue(f"budget_envelope must not be negative, got {budget_envelope}")
        return cls._create(cls.Opened, id=cls.id_for(key), key=key, name=name, pmo_type=pmo_type,
                           currency=currency, budget_envelope=budget_envelope, owner=owner,
                           **envelope.as_kwargs())

    @property
    def remaining(self) -> Decimal:
        return self.budget_envelope - self.committed

    def set_objective(self, objective_id: str, title: str, weight: Decimal,
                      envelope: Envelope) -> None:
        if not Decimal(0) < weight <= Decimal(1):
            raise InvalidValue(f"weight must be in (0, 1], got {weight}")
        trigger(self, self.ObjectiveSet, envelope, objective_id=objective_id, title=title,
                weight=weight)

    def require_objective(self, objective_id: str) -> None:
        if objective_id not in self.objectives:
            raise UnknownAggregate("objective", objective_id)

    def require_currency(self, currency: str) -> None:
        if currency != self.currency:
            raise CurrencyMismatch(currency, self.currency)

    def check_commitment(self, project_id: str, amount: Decimal) -> None:
        """Refuse, under envelope governance, a budget that does not fit what is left."""
        if not self.pmo_type.enforces_envelope:
            return
        available = self.remaining + self.commitments.get(project_id, Decimal(0))
        if amount > available:
            raise OverBudgetEnvelope(amount, available, self.currency)

    def commit_budget(self, project_id: str, amount: Decimal, envelope: Envelope) -> None:
        self.check_commitment(project_id, amount)
        trigger(self, self.BudgetCommitted, envelope, project_id=project_id, amount=amount)

    def release_budget(self, project_id: str, envelope: Envelope) -> None:
        if project_id in self.commitments:
            trigger(self, self.BudgetReleased, envelope, project_id=project_id)
