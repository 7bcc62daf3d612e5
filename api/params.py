"""Query parameters every read route shares, checked once (CONTRACT section 10, "Reads").

A parameter the service cannot honour is a 422 problem, never a 5xx: a cursor that is
not one this service gave out (non-ASCII digits such as ``²``, 5,000 digits, a number
above 2^63 - 1, a JSON object), an instant without a UTC offset or outside
[1970-01-01T00:00:00Z, 9999-12-30T00:00:00Z], a ``q`` longer than 200 characters.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Query

from api.problems import Problem
from ingest.limits import EARLIEST, LATEST
from projections.lists import BadQuery, decode_key_cursor

MAX_POSITION = 2**63 - 1  # a BIGINT: what both stores can compare against
# ASCII digits only (str.isdigit() takes '²' too), at most 18: every one names a position
# both stores can compare, so the OpenAPI pattern says exactly what is accepted.
POSITION_CURSOR = "^[0-9]{1,18}$"
_POSITION = re.compile(POSITION_CURSOR[1:-1])
MAX_Q = 200

# ``q`` of the lists: at most 200 characters, matched literally.
SearchText = Annotated[str | None, Query(max_length=MAX_Q,
                                         description="part of the name or id, matched "
                                         "literally (at most 200 characters)")]


def invalid(detail: str) -> Problem:
    return Problem(422, "Invalid request", detail, kind="invalid-request")


def position_cursor(cursor: str | None, name: str = "cursor") -> int:
    """The position a ``next_cursor`` of an append-only list (audit, rejections, history)
    stands for; 0 without one."""
    if cursor is None:
        return 0
    if _POSITION.fullmatch(cursor) is None:
        raise invalid(f"{name}: not a cursor this route gave out")
    return int(cursor)


def key_cursor(cursor: str | None) -> str | None:
    """The id after which a list ordered by id (portfolios, managers) resumes."""
    try:
        return decode_key_cursor(cursor)
    except BadQuery as e:
        raise invalid(str(e)) from None


def parse_instant(name: str, text: str | None) -> datetime | None:
    """An ISO 8601 instant with a UTC offset, within the contract's range, in UTC."""
    if text is None:
        return None
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise invalid(f"{name}: not an ISO 8601 instant: {text[:64]!r}") from None
    if instant.utcoffset() is None:
        raise invalid(f"{name}: give a UTC offset, e.g. 2026-03-01T12:00:00Z")
    # Compared before converting: 9999-12-31T23:59:59-05:00 has no UTC datetime at all.
    if not EARLIEST <= instant <= LATEST:
        raise invalid(f"{name}: must lie between {EARLIEST.isoformat()} and "
                      f"{LATEST.isoformat()}")
    return instant.astimezone(UTC)

