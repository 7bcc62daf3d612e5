"""A project manager of the PMO's pool, and the projects they hold.

The manager is the consistency boundary of the capacity rule: assignments and
releases are recorded here, so concurrent assignments conflict on its version.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import BaseAggregate
from eventsourcing.domain import Snapshot as AggregateSnapshot

from domain.base import PmoCreated, PmoEvent, store_id, trigger
from domain.errors import InvalidValue, ManagerNotInPool, OverCapacity
from domain.values import Envelope


class Manager(BaseAggregate[UUID]):
    TOPIC = "pmo.manager"
    class_version = 2  # v2 holds a grade (snapshots of v1 lack it)

    key: str
    name: str
    capacity: int
    grade: str | None
    in_pool: bool
    projects: list[str]

    def __init__(self) -> None:
        """State is set by ``Registered.apply``; annotations above only declare it."""

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """Snapshots of v1 have no grade."""
        state["grade"] = None

    @staticmethod
    def id_for(key: str) -> UUID:
        return store_id("manager", key)

    class Event(PmoEvent):
        pass

    class Snapshot(AggregateSnapshot):
        TOPIC = "pmo.manager.snapshot"

    class Registered(Event, PmoCreated):
        TOPIC = "pmo.manager.registered"
        class_version = 2
        name: str
        capacity: int
        grade: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """v1, stored before grades were tracked, had none."""
            state["grade"] = None

        def apply(self, m: Manager) -> None:
            m.key = self.key
            m.name = self.name
            m.capacity = self.capacity
            m.grade = self.grade
            m.in_pool = True
            m.projects = []

    class CapacityChanged(Event):
        TOPIC = "pmo.manager.capacity_changed"
        capacity: int

        def apply(self, m: Manager) -> None:
            m.capacity = self.capacity

    class LeftPool(Event):
        TOPIC = "pmo.manager.left_pool"
        reason: str | None

        def apply(self, m: Manager) -> None:
            m.in_pool = False

    class ProjectAssigned(Event):
        """The manager now holds this project (it counts against their capacity)."""

        TOPIC = "pmo.manager.project_assigned"
        project_id: str

        def apply(self, m: Manager) -> None:
            m.projects.append(self.project_id)

    class ProjectReleased(Event):
        """The project ended or moved to another manager: it no longer counts."""

        TOPIC = "pmo.manager.project_released"
        project_id: str

        def apply(self, m: Manager) -> None:
            m.projects.remove(self.project_id)

    @classmethod
    def register(cls, key: str, *, name: str, capacity: int, grade: str | None,
                 envelope: Envelope) -> Manager:
        _require_capacity(capacity)
        return cls._create(cls.Registered, id=cls.id_for(key), key=key, name=name,
                           capacity=capacity, grade=grade, **envelope.as_kwargs())

    def change_capacity(self, capacity: int, envelope: Envelope) -> None:
        _require_capacity(capacity)
        trigger(self, self.CapacityChanged, envelope, capacity=capacity)

    def leave_pool(self, reason: str | None, envelope: Envelope) -> None:
        if not self.in_pool:
            raise InvalidValue(f"manager '{self.key}' already left the pool")
        trigger(self, self.LeftPool, envelope, reason=reason)

    def check_take_on(self, project_id: str, *, accountable: bool) -> None:
        """Refuse what ``take_on`` would refuse, triggering nothing."""
        if project_id in self.projects or not accountable:
            return
        if not self.in_pool:
            raise ManagerNotInPool(f"manager '{self.key}' has left the pool")
        if len(self.projects) >= self.capacity:
            raise OverCapacity(self.key, len(self.projects), self.capacity)

    def take_on(self, project_id: str, *, accountable: bool, envelope: Envelope) -> None:
        """Hold ``project_id``; under a directive PMO only from the pool and within capacity."""
        self.check_take_on(project_id, accountable=accountable)
        if project_id not in self.projects:
            trigger(self, self.ProjectAssigned, envelope, project_id=project_id)

    def release(self, project_id: str, envelope: Envelope) -> None:
        if project_id in self.projects:
            trigger(self, self.ProjectReleased, envelope, project_id=project_id)


def _require_capacity(capacity: int) -> None:
    if capacity < 1:
        raise InvalidValue(f"capacity must be at least 1, got {capacity}")
