"""``GET /v1/projects/{id}/history``: a project's stored events, in order, for auditors.

Read from the event store itself, not from a view: what an auditor sees here is
what was recorded. ``data`` is the event's own facts, without the envelope
(shown beside it) or the store's bookkeeping.
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent
from fastapi import APIRouter, Query

from api.auth import Auditor
from api.deps import ServicesDep
from api.params import position_cursor
from api.problems import Problem
from domain.project import Project

router = APIRouter(tags=["history"])

NOT_DATA = frozenset({"originator_id", "originator_version", "originator_topic", "timestamp",
                      "source", "event_id", "actor", "time", "key"})


def json_safe(value: Any) -> Any:
    """Exact and portable: money as decimal strings, dates and times ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return json_safe(value.value)
    if isinstance(value, UUID):
        return str(value)
    if is_dataclass(value) and not isinstance(value, type):
        return json_safe(asdict(value))
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    return value


def entry(event: Any, position: int | None) -> dict[str, Any]:
    fields = vars(event)
    return {
        "position": position,
        "version": event.originator_version,
        "type": event.TOPIC,
        "time": json_safe(fields.get("time")),
        "recorded_at": json_safe(event.timestamp),
        "actor": fields.get("actor"),
        "source": fields.get("source"),
        "event_id": fields.get("event_id"),
        "data": {k: json_safe(v) for k, v in fields.items() if k not in NOT_DATA},
    }


def raw_entry(stored: StoredEvent, position: int | None, error: Exception) -> dict[str, Any]:
    """An event this version cannot decode (an older service stored it, or its bytes were
    edited): shown as stored, in the transcoder's tagged JSON, never a 500. The audit
    trail covers its bytes; the views quarantine its aggregate."""
    try:
        fields = orjson.loads(stored.state)
    except orjson.JSONDecodeError:
        fields = {}
    if not isinstance(fields, dict):
        fields = {}
    return {
        "position": position,
        "version": stored.originator_version,
        "type": stored.topic,
        "time": fields.get("time"),
        "recorded_at": fields.get("timestamp"),
        "actor": fields.get("actor"),
        "source": fields.get("source"),
        "event_id": fields.get("event_id"),
        "data": {k: v for k, v in fields.items() if k not in NOT_DATA},
        "undecodable": f"{type(error).__name__}: this version cannot read the stored event",
    }


def decoded_entry(services: Any, stored: StoredEvent, position: int | None) -> dict[str, Any]:
    try:
        return entry(services.app.mapper.to_domain_event(stored), position)
    except Exception as e:  # any stored bytes: history answers what was recorded
        return raw_entry(stored, position, e)


@router.get("/v1/projects/{project_id}/history", summary="A project's stored events, in order",
            responses={404: {"description": "no such project",
                             "content": {"application/problem+json": {}}}})
def project_history(
    project_id: str, _: Auditor, services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> dict[str, Any]:
    after = position_cursor(cursor)
    aggregate_id = Project.id_for(project_id)
    app = services.app
    # One more than asked for tells whether a next page exists.
    # Read as stored and decoded one by one: an event this version cannot decode is shown
    # raw instead of failing the page (the library's ``events.get`` would raise).
    events = app.recorder.select_events(aggregate_id, gt=after or None, limit=limit + 1)
    if not events and after == 0:
        raise Problem(404, "Not found", f"unknown project '{project_id}'", kind="not-found")
    page = events[:limit]
    positions = app.ledger.positions_by_version(aggregate_id)
    items = [decoded_entry(services, e, positions.get(e.originator_version)) for e in page]
    more = len(events) > limit
    return {"project_id": project_id, "items": items,
            "next_cursor": str(page[-1].originator_version) if more else None}
