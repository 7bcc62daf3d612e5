"""The project list: filters, sort and keyset pagination over ``pv_projects``.

A cursor is opaque to clients: base64 of the last item's sort value and id, so
a page boundary stays put while projects are added or change. A cursor is read
back only if it has exactly that shape, with a value of the sort's type that
both stores can compare (finite, within a BIGINT; no NUL): anything else is
``BadQuery``. ``q`` matches part of the name or id literally (``%``, ``_`` and
``\\`` are escaped in the LIKE pattern, on SQLite and PostgreSQL alike).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

from projections.db import Db, fold

# sort name -> SQL expression (never NULL, so keyset comparisons hold)
SORTS = {
    "project_id": "key", "name": "COALESCE(name, '')", "state": "COALESCE(state, '')",
    "priority": "COALESCE(priority, 0)", "planned_start": "COALESCE(planned_start, '')",
    "planned_finish": "COALESCE(planned_finish, '')", "approved_budget": "COALESCE(bac, 0)",
    "actual_cost": "COALESCE(ac, 0)", "portfolio_id": "COALESCE(portfolio_id, '')",
}


NUMERIC_SORTS = frozenset({"priority", "approved_budget", "actual_cost"})
MAX_CURSOR = 2048  # characters; the cursors given out are far shorter
MAX_INT = 2**63 - 1


class BadQuery(ValueError):
    """A list parameter the service cannot honour (unknown sort, unreadable cursor)."""


@dataclass(frozen=True, slots=True)
class ProjectQuery:
    portfolio: str | None = None
    program: str | None = None
    state: str | None = None
    health: str | None = None
    manager: str | None = None
    q: str | None = None
    sort: str = "project_id"
    limit: int = 50
    cursor: str | None = None


def encode_cursor(value: Any, key: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([value, key])).decode()


def decode_cursor(cursor: str, numeric: bool = False) -> tuple[Any, str]:
    """The (sort value, key) of a cursor given out for a sort of that kind, or ``BadQuery``."""
    bad = BadQuery("cursor: not a cursor this service gave out for this sort")
    decoded = _decoded(cursor, bad)
    if not (isinstance(decoded, list) and len(decoded) == 2 and isinstance(decoded[1], str)):
        raise bad
    value, key = decoded
    if numeric:
        ok = (isinstance(value, int | float) and not isinstance(value, bool)
              and abs(value) <= MAX_INT)  # also false for NaN
    else:
        ok = isinstance(value, str) and "\x00" not in value
    if not ok or "\x00" in key:
        raise bad
    return value, key


def _decoded(cursor: str, bad: BadQuery) -> Any:
    """The JSON inside a cursor (base64 of it), or ``bad``: what every cursor shares."""
    if len(cursor) > MAX_CURSOR or not cursor.isascii():
        raise bad
    try:
        return orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError):
        raise bad from None


def encode_key_cursor(key: str) -> str:
    """The cursor of a list ordered by id alone (portfolios, managers)."""
    return base64.urlsafe_b64encode(orjson.dumps([key])).decode()


def decode_key_cursor(cursor: str | None) -> str | None:
    """The id an ``encode_key_cursor`` cursor stands for, or ``BadQuery``."""
    if cursor is None:
        return None
    bad = BadQuery("cursor: not a cursor this service gave out")
    decoded = _decoded(cursor, bad)
    if not (isinstance(decoded, list) and len(decoded) == 1 and isinstance(decoded[0], str)
            and "\x00" not in decoded[0]):
        raise bad
    return decoded[0]


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` literally anywhere (with ``ESCAPE '\\'``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def project_page(db: Db, query: ProjectQuery) -> tuple[list[str], str | None]:
    """Docs (JSON text) of one page, and the next page's cursor."""
    name = query.sort.lstrip("-")
    if name not in SORTS:
        raise BadQuery(f"sort: unknown field '{name}'; use one of {', '.join(sorted(SORTS))}"
                       " (prefix '-' for descending)")
    desc = query.sort.startswith("-")
    expr = SORTS[name]
    clause: list[str] = []
    args: list[Any] = []
    for column, wanted in (("portfolio_id", query.portfolio), ("program_id", query.program),
                           ("state", query.state), ("manager_id", query.manager)):
        if wanted is not None:
            clause.append(f"{column} = ?")
            args.append(wanted)
    if query.health is not None:
        if query.health == "unknown":
            clause.append("overall IS NULL")
        else:
            clause.append("overall = ?")
            args.append(query.health)
    if query.q:
        clause.append("(LOWER(name) LIKE ? ESCAPE '\\' OR LOWER(key) LIKE ? ESCAPE '\\')")
        pattern = like_pattern(fold(query.q))
        args += [pattern, pattern]
    if query.cursor is not None:
        value, key = decode_cursor(query.cursor, numeric=name in NUMERIC_SORTS)
        op = "<" if desc else ">"
        clause.append(f"({expr} {op} ? OR ({expr} = ? AND key {op} ?))")
        args += [value, value, key]
    order = "DESC" if desc else "ASC"
    sql = f"SELECT doc, {expr}, key FROM pv_projects"
    if clause:
        sql += " WHERE " + " AND ".join(clause)
    sql += f" ORDER BY {expr} {order}, key {order} LIMIT {int(query.limit) + 1}"
    rows = db.query(sql, args)
    items = [r[0] for r in rows[:query.limit]]
    more = len(rows) > query.limit
    last = rows[query.limit - 1] if more else None
    return items, (encode_cursor(last[1], last[2]) if last is not None else None)
