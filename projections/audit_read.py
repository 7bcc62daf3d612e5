"""Reading the audit trail: filtered pages and streamed exports.

``verify`` (re-exported here) lives in ``projections.audit_verify``: it trusts
nothing it wrote and recomputes the chain from the event store.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from projections.audit import COLUMNS, GENESIS
from projections.audit_verify import verify
from projections.db import Db
from projections.feed import from_micros, micros

ENTRY = ("position", "aggregate_id", "store_id", "kind", "version", "type", "time",
         "recorded_at", "actor", "source", "event_id", "hash", "prev_hash")
# Only linked rows (the join): a row waiting for its predecessor is not in the chain yet.
_SELECT = (f"SELECT {', '.join('a.' + c for c in COLUMNS[:-1])}, c.hash, (SELECT p.hash "
           "FROM pv_audit_chain p WHERE p.position < a.position ORDER BY p.position DESC "
           "LIMIT 1) FROM pv_audit a JOIN pv_audit_chain c ON c.position = a.position")
BATCH = 2000


@dataclass(frozen=True, slots=True)
class AuditFilter:
    aggregate: str | None = None  # the publisher's id or the store id
    type: str | None = None
    actor: str | None = None
    since: datetime | None = None  # recording time, inclusive
    until: datetime | None = None  # recording time, inclusive

    def where(self) -> tuple[list[str], list[Any]]:
        clause: list[str] = []
        args: list[Any] = []
        if self.aggregate is not None:
            clause.append("(aggregate_id = ? OR store_id = ?)")
            args += [self.aggregate, self.aggregate.replace("-", "").lower()]
        if self.type is not None:
            clause.append("type = ?")
            args.append(self.type)
        if self.actor is not None:
            clause.append("actor = ?")
            args.append(self.actor)
        if self.since is not None:
            clause.append("recorded_us >= ?")
            args.append(micros(self.since))
        if self.until is not None:
            clause.append("recorded_us <= ?")
            args.append(micros(self.until))
        return clause, args


def entry(row: tuple[Any, ...]) -> dict[str, Any]:
    d = dict(zip((*COLUMNS, "prev_hash"), row, strict=True))
    d["kind"] = d["type"].split(".")[1]
    d["recorded_at"] = from_micros(d["recorded_us"]).isoformat()
    d["prev_hash"] = d["prev_hash"] or GENESIS
    return {k: d[k] for k in ENTRY}


def page(db: Db, f: AuditFilter, after: int, limit: int) -> tuple[list[dict[str, Any]],
                                                                  int | None]:
    """Entries after position ``after``, and the cursor of the next page (None at the end)."""
    clause, args = f.where()
    clause.append("a.position > ?")
    args.append(after)
    rows = db.query(f"{_SELECT} WHERE {' AND '.join(clause)} ORDER BY a.position "
                    f"LIMIT {int(limit) + 1}", args)
    items = [entry(r) for r in rows[:limit]]
    more = len(rows) > limit
    return items, (items[-1]["position"] if more and items else None)


def entries(db: Db, f: AuditFilter) -> Iterator[dict[str, Any]]:
    after = 0
    while True:
        items, _ = page(db, f, after, BATCH)
        yield from items
        if len(items) < BATCH:
            return
        after = items[-1]["position"]


def export_jsonl(db: Db, f: AuditFilter) -> Iterator[bytes]:
    for item in entries(db, f):
        yield orjson.dumps(item) + b"\n"


# A cell a spreadsheet would read as a formula (CONTRACT section 10): publishers choose
# subject, actor, source and id, so ``=HYPERLINK(...)`` must stay text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell: None empty, and text that starts like a formula after a ``'``."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def export_csv(db: Db, f: AuditFilter) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(ENTRY)
    for count, item in enumerate(entries(db, f), 1):
        writer.writerow([csv_cell(item[k]) for k in ENTRY])
        if count % 500 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


__all__ = ["AuditFilter", "entries", "entry", "export_csv", "export_jsonl", "page",
           "verify"]
