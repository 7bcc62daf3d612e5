"""The project list: filters, sort and keyset pagination over ``pv_projects``.

A cursor is opaque to clients: base64 of the last item's sort value and id, so
a page boundary stays put while projects are added or change.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

from projections.db import Db

# sort name -> SQL expression (never NULL, so keyset comparisons hold)
SORTS = {
    "project_id": "key", "name": "COALESCE(name, '')", "state": "COALESCE(state, '')",
    "priority": "COALESCE(priority, 0)", "planned_start": "COALESCE(planned_start, '')",
    "planned_finish": "COALESCE(planned_finish, '')", "approved_budget": "COALESCE(bac, 0)",
    "actual_cost": "COALESCE(ac, 0)", "portfolio_id": "COALESCE(portfolio_id, '')",
}


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


def decode_cursor(cursor: str) -> tuple[Any, str]:
    try:
        value, key = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError) as e:
        raise BadQuery(f"cursor: not a cursor this service gave out ({e})") from None
    return value, str(key)


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
        clause.append("(LOWER(name) LIKE ? OR LOWER(key) LIKE ?)")
        pattern = f"%{query.q.lower()}%"
        args += [pattern, pattern]
    if query.cursor is not None:
        value, key = decode_cursor(query.cursor)
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
