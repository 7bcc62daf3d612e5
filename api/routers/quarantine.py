"""Quarantined aggregates: ``GET /v1/quarantine`` (auditor), ``retry`` and ``evict`` (admin).

A projection that cannot apply a stored event sets that aggregate aside (see
``projections.quarantine``). An auditor lists them with the error; an admin, after
a fix, re-applies the held events (``retry``), or drops the aggregate's view
(``evict``) so that it is gone rather than wrong. Each action is stored as an
event (``domain.operations``) before the view change commits: the audit trail and
its hash chain cover it, with the acting key's hash as the actor.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.auth import Admin, Auditor, caller_actor
from api.deps import Services, ServicesDep
from api.params import invalid
from api.problems import Problem
from domain.application import PmoApplication
from domain.operations import Operation
from domain.values import Envelope
from projections.lists import BadQuery, decode_cursor, encode_cursor
from projections.quarantine import NotQuarantined

router = APIRouter(tags=["quarantine"])
SOURCE = "urn:pmo-ledger:api"  # the CloudEvent source of the service's own actions
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown projection, or no such quarantined aggregate in it",
          "content": {"application/problem+json": {}}}}
EXAMPLE = {
    "projection": "projects", "aggregate": "PRJ-7", "store_id": "3f1c...", "first_position": 4711,
    "first_version": 12, "error_class": "InvalidOperation",
    "error": "InvalidOperation: [<class 'decimal.ConversionSyntax'>]", "held_events": 3,
    "since": "2026-11-30T01:02:03.456789+00:00", "retries": 0}


def _cursor(cursor: str | None) -> tuple[str, str] | None:
    """(projection, aggregate) after which the list resumes: the lists' cursor format."""
    if cursor is None:
        return None
    try:
        return decode_cursor(cursor)
    except BadQuery as e:
        raise invalid(str(e)) from None


@router.get("/v1/quarantine", summary="Quarantined aggregates: first failing position, error",
            responses={200: {"description": "one page", "content": {"application/json": {
                "example": {"items": [EXAMPLE], "next_cursor": None}}}}})
def list_quarantined(
    _: Auditor, services: ServicesDep,
    projection: Annotated[str | None, Query(description="only this projection")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> dict[str, Any]:
    entries = services.projections.quarantined(projection, _cursor(cursor), limit + 1)
    items = [e.as_item() for e in entries[:limit]]
    more = len(entries) > limit
    last = entries[limit - 1] if more else None
    next_cursor = (encode_cursor(last.projection, last.aggregate)
                   if last is not None else None)
    return {"items": items, "next_cursor": next_cursor}


def _envelope(request: Request) -> Envelope:
    return Envelope(SOURCE, str(uuid.uuid4()), caller_actor(request), datetime.now(UTC))


def recorder(app: PmoApplication, envelope: Envelope,
             evict: bool) -> Callable[[dict[str, Any]], None]:
    """What stores an action's outcome as its event (called before the change commits)."""

    def record(outcome: dict[str, Any]) -> None:
        common = {"projection": outcome["projection"], "aggregate": outcome["aggregate"],
                  "store_id": outcome["store_id"], "envelope": envelope}
        operation = (Operation.quarantine_evicted(**common) if evict else
                     Operation.quarantine_retried(**common, outcome=outcome["status"],
                                                  error=outcome.get("error")))
        app.save(operation)

    return record


def _act(services: Services, request: Request, projection: str, aggregate: str,
         evict: bool) -> dict[str, Any]:
    envelope = _envelope(request)
    record = recorder(services.app, envelope, evict)
    svc = services.projections
    try:
        if evict:
            outcome = svc.evict_quarantined(projection, aggregate, record)
        else:
            outcome = svc.retry_quarantined(projection, aggregate, record)
    except KeyError:
        names = ", ".join(n for n, p in svc.projections.items() if p.quarantinable)
        raise Problem(404, "Not found", f"no projection '{projection}' that quarantines; "
                      f"use one of {names}", kind="not-found") from None
    except NotQuarantined as e:
        raise Problem(404, "Not found", str(e), kind="not-found") from None
    if services.runner is not None:
        services.runner.wake()  # the audit trail shows the action at once
    outcome["actor"] = envelope.actor
    outcome["action_id"] = envelope.event_id
    return outcome


@router.post("/v1/quarantine/{projection}/{aggregate:path}/retry",
             summary="Re-apply a quarantined aggregate's held events (after a fix)",
             responses=NOT_FOUND)
def retry(projection: str, aggregate: str, _: Admin, services: ServicesDep,
          request: Request) -> dict[str, Any]:
    """``status`` is ``released`` when every held event applied, or ``quarantined`` when
    one failed again: the events before it are applied, the error is the new one."""
    return _act(services, request, projection, aggregate, evict=False)


@router.post("/v1/quarantine/{projection}/{aggregate:path}/evict",
             summary="Drop a quarantined aggregate's view: gone rather than wrong",
             responses=NOT_FOUND)
def evict(projection: str, aggregate: str, _: Admin, services: ServicesDep,
          request: Request) -> dict[str, Any]:
    """Its later events are dropped by this projection until a rebuild."""
    return _act(services, request, projection, aggregate, evict=True)
