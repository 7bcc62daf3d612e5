"""Reads that wait for the views to be far enough along (CONTRACT section 11).

- ``min_position=P`` (every view route): answered once every view the route reads
  has a watermark at or past P, i.e. every stored event up to P is in them.
- ``as_of=T``: answered once every view it reads has a watermark at or past every
  event recorded at or before T, so the answer never changes later. The event just
  after the lowest watermark tells: if it was recorded after T (or there is none and
  T is over ``SETTLE_S`` old), nothing at or before T is missing. This reads
  recording order as store order, which holds within ``SETTLE_S``: a store writer
  records and commits in one short transaction (SQLite: one writer; PostgreSQL: the
  recorder's table lock orders the ids).

Either waits up to ``WAIT_S`` (polling the views' tracking rows every ``POLL_S``),
then answers 503 problem+json with ``Retry-After`` and the watermark it saw. The
same holds in embedded and Kafka mode: both read the watermarks from the store.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

import orjson
from fastapi import Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from api.auth import Viewer
from api.deps import Services, ServicesDep
from api.params import invalid, parse_instant
from api.problems import Problem
from projections.feed import micros, plain_state

WAIT_S = 2.0
POLL_S = 0.02
SETTLE_S = 1.0
RETRY_AFTER_S = 1
# The views each collection's routes read (roll-ups read the project figures too).
READS = {"portfolios": ("portfolios", "projects"), "projects": ("projects",),
         "programs": ("programs", "projects"), "managers": ("managers", "projects"),
         "audit": ("audit",)}


def views_read(path: str) -> tuple[str, ...]:
    parts = path.strip("/").split("/")
    collection = parts[1] if len(parts) > 1 else ""
    return READS.get(collection, tuple(READS))


def watermark(services: Services, names: tuple[str, ...]) -> int:
    """The lowest watermark of views ``names``."""
    rows = services.projections.status(None)
    return min((int(r["position"]) for r in rows if r["name"] in names), default=0)


def covers(services: Services, low: int, at: datetime) -> bool:
    """Whether every event recorded at or before ``at`` is in views whose lowest watermark
    is ``low``."""
    after = services.app.recorder.select_notifications(low, 1, inclusive_of_start=False)
    if not after:
        return micros(at) < micros(datetime.now(UTC)) - int(SETTLE_S * 1e6)
    state = plain_state(services.app.mapper, after[0].state)
    recorded = datetime.fromisoformat(orjson.loads(state)["timestamp"]["_data_"])
    return recorded > at


async def read_after(request: Request, services: ServicesDep, roles: Viewer,
                     min_position: Annotated[int | None, Query(
                         ge=0, description="answer only once the views this route reads "
                         "hold every stored event up to this position (waits up to 2 s, "
                         "then 503 with Retry-After)")] = None) -> None:
    """Router dependency of the view routes: waits for ``min_position`` / ``as_of``."""
    # as_of is waited on only where the route reads it and the caller may ask it (an
    # auditor): anyone else gets the route's own answer (403, or a list without as_of).
    at = _recording_instant(request) if "auditor" in roles else None
    if min_position is None and at is None:
        return
    names = views_read(request.url.path)
    if min_position is not None:
        head = await run_in_threadpool(services.app.recorder.max_notification_id)
        if min_position > (head or 0):
            # A position comes from a stored event (POST's answer, a receipt): one past
            # the head names nothing yet, and waiting could not make the answer right.
            raise invalid(f"min_position {min_position} is past the store's last position "
                          f"({head or 0}): no such event is stored")
    deadline = time.monotonic() + WAIT_S
    while True:
        low = await run_in_threadpool(watermark, services, names)
        ready = min_position is None or low >= min_position
        if ready and at is not None:
            ready = await run_in_threadpool(covers, services, low, at)
        if ready:
            return
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(POLL_S)
    wanted = (f"position {min_position}" if min_position is not None
              else f"every event recorded by {at.isoformat() if at else ''}")
    problem = Problem(503, "Not caught up", f"the views {', '.join(names)} do not hold "
                      f"{wanted} yet (watermark {low}); retry shortly", kind="not-caught-up",
                      watermark=low, views=list(names))
    problem.headers["Retry-After"] = str(RETRY_AFTER_S)
    raise problem


# The parameters that name a recording instant an answer is given as of: ``as_of``, and a
# restatement's ``reported_at`` (what was reported then must never change later either).
RECORDING_INSTANTS = ("as_of", "reported_at")


def _recording_instant(request: Request) -> datetime | None:
    """The recording instant the route reads, if it reads one and it was given."""
    route = request.scope.get("route")
    declared = {p.name for p in route.dependant.query_params} if route is not None else set()
    for name in RECORDING_INSTANTS:
        if name in declared and name in request.query_params:
            return _instant(name, request.query_params[name])
    return None


def _instant(name: str, raw: str) -> datetime | None:
    """``raw`` as the route will read it; an invalid one is the route's to refuse.

    An instant later than the wait can reach is refused here (422): events recorded
    before it may still come, so no answer for it could be final."""
    try:
        instant = parse_instant(name, raw)
    except Problem:
        return None
    if instant is not None and instant > datetime.now(UTC) + timedelta(seconds=WAIT_S):
        raise invalid(f"{name} lies in the future: events recorded before it may still "
                      "come, so the answer could change")
    return instant


ReadAfter = Depends(read_after)
