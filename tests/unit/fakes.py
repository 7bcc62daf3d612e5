"""An in-memory ``Aggregates`` port and builders of commands: no application, no I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import count
from typing import Any
from uuid import UUID

from eventsourcing.domain import BaseAggregate

from domain import commands as c
from domain.catalogue import decide
from domain.decisions import A
from domain.values import Colour, Envelope, PmoType

_ids = count(1)


def envelope(actor: str | None = "alice") -> Envelope:
    return Envelope("test/suite", f"ev-{next(_ids)}", actor, datetime(2026, 1, 5, tzinfo=UTC))


class FakeAggregates:
    """Holds aggregates by store id, as the unit of work does, minus the store."""

    def __init__(self) -> None:
        self.by_id: dict[UUID, BaseAggregate[Any]] = {}

    def get(self, cls: type[A], key: str) -> A | None:
        found = self.by_id.get(cls.id_for(key))
        return found if isinstance(found, cls) else None

    def add(self, aggregate: BaseAggregate[Any]) -> None:
        self.by_id[aggregate.id] = aggregate

    def run(self, command: c.Command) -> BaseAggregate[Any]:
        return decide(command, envelope(), self)


def portfolio(pmo_type: PmoType, envelope_amount: str = "1000", key: str = "PF") -> c.OpenPortfolio:
    return c.OpenPortfolio(key, "Portfolio", pmo_type, "EUR", Decimal(envelope_amount), "owner")


def proposal(key: str, portfolio_id: str = "PF", **overrides: Any) -> c.ProposeProject:
    fields: dict[str, Any] = {
        "portfolio_id": portfolio_id, "name": f"Project {key}", "sponsor": "sponsor",
        "budget_requested": Decimal("100"), "planned_start": date(2026, 1, 1),
        "planned_finish": date(2026, 12, 31)}
    fields.update(overrides)
    return c.ProposeProject(key, **fields)


def status(percent: str = "50", colour: Colour = Colour.GREEN) -> dict[str, Any]:
    return {"overall": colour, "scope": colour, "schedule": colour, "budget": colour,
            "percent_complete": Decimal(percent), "summary": "ok"}


def world(pmo_type: PmoType, envelope_amount: str = "1000") -> FakeAggregates:
    """A portfolio of ``pmo_type`` and one pool manager M1 with capacity 2."""
    aggs = FakeAggregates()
    aggs.run(portfolio(pmo_type, envelope_amount))
    aggs.run(c.RegisterManager("M1", "Manager One", 2))
    return aggs
