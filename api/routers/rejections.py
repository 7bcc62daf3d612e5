"""``GET /v1/rejections``: dead-lettered and rejected inbound messages, with why (auditor)."""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query, Response

from api.auth import Auditor
from api.deps import ServicesDep
from api.params import position_cursor
from api.routers.projections import json_response

router = APIRouter(tags=["rejections"])


@router.get("/v1/rejections", summary="Refused inbound messages: original bytes and reason")
def list_rejections(
    _: Auditor, services: ServicesDep,
    kind: Annotated[Literal["dlq", "rejected"] | None,
                    Query(description="dlq: malformed; rejected: refused by the rules")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> Response:
    log = services.projections.rejections
    items, next_id = log.page(kind, position_cursor(cursor), limit)
    return json_response(orjson.dumps({
        "items": items, "next_cursor": None if next_id is None else str(next_id),
        "counts": log.counts()}))
