"""``?valid_at=`` on the view routes (CONTRACT section 13): what routes share.

``valid_at`` is valid time and needs ``viewer`` (the route's own check); with ``as_of``
too, the view is as the service knew it then, and ``as_of`` still needs ``auditor``.
Both are validated like ``as_of`` alone (``api.params.parse_instant``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Query, Response
from starlette.concurrency import run_in_threadpool

from api.deps import Services
from api.params import parse_instant
from api.problems import Problem
from api.routers.projections import json_response, parse_as_of

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
