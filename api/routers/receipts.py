"""``GET /v1/receipts?source=S&id=I``: what became of one inbound message (publisher or
auditor), so a Kafka publisher can read its own writes (CONTRACT section 11).

Looked up in this order: the event store's receipts (``stored``, with the position to
pass as ``min_position``), events waiting for an aggregate they name (``parked``,
when ingest parks them), the rejection log (``rejected`` or ``dead-lettered``, with
the reason); else ``pending``: not ingested yet, or its dead letter is not logged yet
(``pmo consume rejections`` lags), or never published. A message stored after an
earlier refusal (fixed and re-published) answers ``stored``.
"""

from __future__ import annotations

from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Query

from api.auth import PublisherOrAuditor
from api.deps import Services, ServicesDep

router = APIRouter(tags=["events"])
KINDS = {"dlq": "dead-lettered", "rejected": "rejected"}


class ParkedLookup(Protocol):
    def parked(self, source: str, event_id: str) -> str | None: ...


@router.get("/v1/receipts", summary="What became of one inbound message (publisher, auditor)",
            responses={200: {"content": {"application/json": {"example": {
                "status": "stored", "position": 1042}}}}})
def receipt(_: PublisherOrAuditor, services: ServicesDep,
            source: Annotated[str, Query(min_length=1, description="the CloudEvent's source")],
            id: Annotated[str, Query(min_length=1, description="the CloudEvent's id")],
            ) -> dict[str, Any]:
    return lookup(services, source, id)


def lookup(services: Services, source: str, event_id: str) -> dict[str, Any]:
    position = services.app.ledger.positions_of([(source, event_id)]).get((source, event_id))
    if position is not None:
        return {"status": "stored", "position": int(position)}
    parking: ParkedLookup | None = services.extras.get("parking")
    if parking is not None:
        reason = parking.parked(source, event_id)
        if reason is not None:
            return {"status": "parked", "reason": reason}
    rows = services.projections.db.query(
        "SELECT kind, reason FROM pv_rejections WHERE source = ? AND event_id = ? "
        "ORDER BY id DESC LIMIT 1", (source, event_id))
    if rows:
        kind, reason = rows[0]
        return {"status": KINDS.get(str(kind), str(kind)), "reason": str(reason)}
    return {"status": "pending"}
