"""A program: projects of one portfolio governed together."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import BaseAggregate
from eventsourcing.domain import Snapshot as AggregateSnapshot

from domain.base import PmoCreated, PmoEvent, store_id
from domain.values import Envelope


class Program(BaseAggregate[UUID]):
    TOPIC = "pmo.program"

    key: str
    portfolio_id: str
    name: str
    manager_id: str | None

    def __init__(self) -> None:
        """State is set by ``Launched.apply``; annotations above only declare it."""

    @staticmethod
    def id_for(key: str) -> UUID:
        return store_id("program", key)

    class Event(PmoEvent):
        pass

    class Snapshot(AggregateSnapshot):
        TOPIC = "pmo.program.snapshot"

    class Launched(Event, PmoCreated):
        TOPIC = "pmo.program.launched"
        portfolio_id: str
        name: str
        manager_id: str | None

        def apply(self, p: Program) -> None:
            p.key = self.key
            p.portfolio_id = self.portfolio_id
            p.name = self.name
            p.manager_id = self.manager_id

    @classmethod
    def launch(cls, key: str, *, portfolio_id: str, name: str, manager_id: str | None,
               envelope: Envelope) -> Program:
        return cls._create(cls.Launched, id=cls.id_for(key), key=key, portfolio_id=portfolio_id,
                           name=name, manager_id=manager_id, **envelope.as_kwargs())
