"""Reading the audit trail: filtered pages, streamed exports, and verification against the store.

``verify`` trusts nothing it wrote: it re-reads the event store's notification
log, recomputes every hash and compares position by position with the trail.
It checks the events the trail has recorded so far (events stored since, not
yet projected, are not counted in ``checked``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from eventsourcing.persistence import Notification

from domain.application import PmoApplication
from projections.audit import COLUMNS, GENESIS, chain_hash
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


def _store_log(app: PmoApplication) -> Iterator[Notification]:
    start = 0
    while True:
        batch = app.recorder.select_notifications(start, BATCH, inclusive_of_start=False)
        yield from batch
        if len(batch) < BATCH:
            return
        start = batch[-1].id


def verify(db: Db, app: PmoApplication) -> dict[str, Any]:
    """``{"ok": true, "checked": N}`` or ``{"ok": false, "broken_at": position}``."""
    log = _store_log(app)
    prev = GENESIS
    checked = 0
    for item in entries(db, AuditFilter()):
        position = item["position"]
        n = next(log, None)
        if n is None or n.id != position:
            # The store lost this event (deleted), or holds one the trail never saw.
            return {"ok": False, "broken_at": position if n is None else min(n.id, position)}
        originator = n.originator_id.hex if hasattr(n.originator_id, "hex") else str(
            n.originator_id).replace("-", "")
        h = chain_hash(prev, n.id, originator, n.originator_version, n.topic, n.state)
        if h != item["hash"] or item["prev_hash"] != prev:
            return {"ok": False, "broken_at": position}
        prev = h
        checked += 1
    return {"ok": True, "checked": checked}
