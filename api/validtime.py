"""``?valid_at=`` on the view routes (CONTRACT section 13): what routes share.

``valid_at`` is valid time and needs ``viewer`` (the route's own check); with ``as_of``
too, the view is as the service knew it then, and ``as_of`` still needs ``auditor``.
Both are validated like ``as_of`` alone (``api.params.parse_instant``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, cast

import orjson
from fastapi import Query, Response
from starlette.concurrency import run_in_threadpool

from api.deps import Services
from api.params import parse_instant
from api.problems import Problem
from api.routers.projections import json_response, parse_as_of
from projections.lists import encode_key_cursor

ValidAt = Annotated[str | None, Query(
    description="valid time, ISO 8601 with an offset: counts only events whose valid time "
    "(their `time`, never running backwards within one aggregate) is at or before it; "
    "with as_of, as the service knew it then")]


def parse_valid_at(valid_at: str | None, as_of: str | None,
                   roles: set[str]) -> tuple[datetime | None, datetime | None]:
    return parse_instant("valid_at", valid_at), parse_as_of(as_of, roles)


async def valid_at_view(services: Services, kind: str, ident: str, valid_at: str,
                        as_of: str | None, roles: set[str]) -> Response:
    valid, recorded = parse_valid_at(valid_at, as_of, roles)
    assert valid is not None  # valid_at is given
    body = await run_in_threadpool(services.projections.valid_at, services.app, kind, ident,
                                   valid, recorded)
    if body is None:
        when = f"valid by {valid.isoformat()}"
        if recorded is not None:
            when += f" as recorded by {recorded.isoformat()}"
        raise Problem(404, "Not found", f"no {kind} '{ident}' {when}", kind="not-found")
    return json_response(body)


def _page_at(services: Services, kind: str, after: str | None, limit: int,
             valid: datetime | None, recorded: datetime | None) -> bytes:
    """A page of list ``kind`` (portfolio or manager) with each item as of ``recorded``
    and/or valid at ``valid``: the ids come from today's list (these aggregates are never
    removed), and one that did not exist then is left out of its page."""
    svc = services.projections
    projection = svc.portfolios if kind == "portfolio" else svc.managers
    field = projection.key_field
    ids = [str(cast(Mapping[str, Any], d)[field]) for d in projection.all(after, limit + 1)]
    items = []
    for ident in ids[:limit]:
        body = (svc.valid_at(services.app, kind, ident, valid, recorded) if valid is not None
                else svc.as_of(services.app, kind, ident, recorded) if recorded is not None
                else None)
        if body is not None:
            items.append(orjson.loads(body))
    more = len(ids) > limit
    return orjson.dumps({"items": items,
                         "next_cursor": encode_key_cursor(ids[limit - 1]) if more else None})


async def list_at(services: Services, kind: str, after: str | None, limit: int,
                  valid_at: str | None, as_of: str | None, roles: set[str]) -> Response:
    """``GET /v1/portfolios`` or ``/v1/managers`` with ``valid_at`` and/or ``as_of``: the
    list of the views its routes by id answer for the same instants. (These parameters
    used to be ignored by the lists, which answered today's views to a question about
    the past.)"""
    valid, recorded = parse_valid_at(valid_at, as_of, roles)
    body = await run_in_threadpool(_page_at, services, kind, after, limit, valid, recorded)
    return json_response(body)
