"""Helpers for quarantine tests: events stored as an older service could have stored them,
and a projection with a bug that a "fix" (a flag) removes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent

from domain.application import PmoApplication, Receipt
from domain.project import Project
from projections.feed import RecordedEvent
from projections.folds import Doc, fold_project
from projections.projects import ProjectProjection
from projections.service import ProjectionService

POISON = "POISON"  # the cost reference the broken projection cannot fold


def version_of(app: PmoApplication, key: str) -> int:
    version: int = app.repository.get(Project.id_for(key)).version
    return version


def store_raw(app: PmoApplication, event_class: Any, aggregate_id: UUID, version: int,
              edit: Callable[[dict[str, Any]], None] | None = None, **fields: Any) -> int:
    """Write one event straight through the recorder (no command, no rule), its JSON
    changed by ``edit``: what an old version of the service could have stored. Its position."""
    event = event_class(originator_id=aggregate_id, originator_version=version,
                        timestamp=event_class.create_timestamp(), source="urn:old-service",
                        event_id=f"old-{uuid.uuid4()}", actor="old", time=datetime.now(UTC),
                        **fields)
    stored = app.mapper.to_stored_event(event)
    state = stored.state
    if edit is not None:
        body = orjson.loads(state)
        edit(body)
        state = orjson.dumps(body)
    # With its receipt, as every stored event of an inbound message has (verify checks it).
    receipt = Receipt(event.source, event.event_id, aggregate_id, version, index=0)
    app.recorder.insert_events([StoredEvent(stored.originator_id, version, stored.topic, state)],
                               timestamps=[event.timestamp], receipts=[receipt])
    position: int = app.recorder.max_notification_id() or 0
    return position


def unreadable_amount(body: dict[str, Any]) -> None:
    body["amount"]["_data_"] = "twelve"


class BrokenProjects(ProjectProjection):
    """The project projection with a bug: a cost whose reference is ``POISON`` makes the
    fold raise, until the "fix" (``fixed = True``, what deploying a fixed version does)."""

    fixed = False

    @staticmethod
    def fold(doc: Doc | None, e: RecordedEvent) -> Doc | None:
        if (not BrokenProjects.fixed and e.topic == "pmo.project.cost_recorded"
                and e.payload.get("reference") == POISON):
            raise ValueError("cannot fold this cost (the bug)")
        return fold_project(doc, e)


def with_broken_projects(service: ProjectionService) -> BrokenProjects:
    broken = BrokenProjects(service.db, service.invalidate)
    service.projects = broken
    service.projections["projects"] = broken
    return broken


def rows_of(service: ProjectionService, store_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the project projection's tables for one project, comparable."""
    out = {}
    for table in service.projects.tables:
        rows = service.db.query(f"SELECT * FROM {table} WHERE id = ?", (store_id,))
        out[table] = sorted((_comparable(r) for r in rows), key=repr)
    return out


def _comparable(row: tuple[Any, ...]) -> tuple[Any, ...]:
    # A doc's JSON is compared parsed (key order is not the point).
    return tuple(orjson.loads(v) if isinstance(v, str) and v.startswith("{") else v
                 for v in row)
