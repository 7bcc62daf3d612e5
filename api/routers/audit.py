"""The audit trail: ``GET /v1/audit``, ``/v1/audit/verify``, ``/v1/audit/export`` (auditor)."""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse

from api.auth import Auditor
from api.deps import ServicesDep
from api.params import parse_instant, position_cursor
from api.routers.projections import json_response
from projections.anchors import trail_head
from projections.audit_read import AuditFilter, export_csv, export_jsonl, page, verify

router = APIRouter(tags=["audit"])
VERIFY_WAIT_S = 5.0


def _filter(aggregate: str | None, type_: str | None, actor: str | None,
            since: str | None, until: str | None) -> AuditFilter:
    return AuditFilter(aggregate, type_, actor, parse_instant("since", since),
                       parse_instant("until", until))


Since = Annotated[str | None, Query(description="recorded at or after (ISO 8601 with offset)")]
Until = Annotated[str | None, Query(description="recorded at or before (ISO 8601 with offset)")]


@router.get("/v1/audit", summary="Every stored event with its hash chain, filtered, paged")
def audit_trail(
    _: Auditor, services: ServicesDep,
    aggregate: Annotated[str | None, Query(description="publisher's id or store id")] = None,
    type: Annotated[str | None, Query(description="event type, e.g. pmo.project.approved")
                    ] = None,
    actor: str | None = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> Response:
    f = _filter(aggregate, type, actor, since, until)
    items, next_position = page(services.projections.db, f, position_cursor(cursor), limit)
    return json_response(orjson.dumps({
        "items": items, "next_cursor": None if next_position is None else str(next_position)}))


@router.get("/v1/audit/verify", summary="Recompute the hash chain from the event store")
def audit_verify(_: Auditor, services: ServicesDep) -> Response:
    runner = services.runner
    if runner is not None:
        # Events stored a moment ago are usually not in the trail yet: give the embedded
        # runner a moment, so a lag is not reported as an unbuilt trail.
        runner.wait_for(services.app.recorder.max_notification_id() or 0, VERIFY_WAIT_S)
    return json_response(orjson.dumps(verify(services.projections.db, services.app)))


@router.get("/v1/audit/anchor", summary="The chain's current head, to sign or store elsewhere")
def audit_anchor(_: Auditor, services: ServicesDep) -> Response:
    return json_response(orjson.dumps(trail_head(services.projections.db)))


@router.get("/v1/audit/export", summary="The whole trail, streamed as CSV or JSON lines")
def audit_export(
    _: Auditor, services: ServicesDep, format: Literal["csv", "jsonl"] = "jsonl",
    aggregate: str | None = None, type: str | None = None, actor: str | None = None,
    since: Since = None, until: Until = None,
) -> StreamingResponse:
    f = _filter(aggregate, type, actor, since, until)
    db = services.projections.db
    if format == "csv":
        return StreamingResponse(export_csv(db, f), media_type="text/csv",
                                 headers={"Content-Disposition": "attachment; "
                                          "filename=audit.csv"})
    return StreamingResponse(export_jsonl(db, f), media_type="application/x-ndjson",
                             headers={"Content-Disposition": "attachment; "
                                      "filename=audit.jsonl"})
