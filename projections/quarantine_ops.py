"""Reading and acting on quarantined aggregates (see ``projections.quarantine``).

``retry`` and ``evict`` run inside a transaction the caller holds, so the caller can
store the action's audit event before it commits. On PostgreSQL they lock the
quarantine row (FOR UPDATE); a batch reads those rows FOR SHARE, so the two take
turns and no held event can slip in beside a retry. On SQLite every writer takes
turns anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from projections.db import Tx
from projections.feed import RecordedEvent, from_micros
from projections.quarantine import (
    CHANGED,
    EVICTED,
    QUARANTINED,
    NotQuarantined,
    now_us,
    settle,
    storable,
)

if TYPE_CHECKING:
    from projections.base import Projection


@dataclass(frozen=True, slots=True)
class Entry:
    projection: str
    aggregate: str  # the store id, 32 hex digits
    key: str | None  # the publisher's id, when the projection could tell it
    first_position: int
    first_version: int
    error_class: str
    error: str
    since_us: int
    retries: int
    held: int

    def as_item(self) -> dict[str, Any]:
        return {"projection": self.projection, "aggregate": self.key or self.aggregate,
                "store_id": self.aggregate, "first_position": self.first_position,
                "first_version": self.first_version, "error_class": self.error_class,
                "error": self.error, "held_events": self.held,
                "since": from_micros(self.since_us).isoformat(), "retries": self.retries}



_ENTRY = ("SELECT q.projection, q.aggregate, q.key, q.first_position, q.first_version, "
          "q.error_class, q.error, q.since_us, q.retries, (SELECT COUNT(*) FROM "
          "pv_quarantine_held h WHERE h.projection = q.projection AND "
          "h.aggregate = q.aggregate) FROM pv_quarantine q")


def _entry(row: Sequence[Any]) -> Entry:
    return Entry(str(row[0]), str(row[1]), row[2], int(row[3]), int(row[4]), str(row[5]),
                 str(row[6]), int(row[7]), int(row[8]), int(row[9]))


def entries(db_query: Any, projection: str | None = None, after: tuple[str, str] | None = None,
            limit: int = 1000) -> list[Entry]:
    """Quarantined aggregates in (projection, aggregate) order; ``db_query`` is ``Db.query``
    or ``Tx.query``."""
    clause = [f"q.state = '{QUARANTINED}'"]
    args: list[Any] = []
    if projection is not None:
        clause.append("q.projection = ?")
        args.append(storable(projection))  # a NUL matches nothing (and PostgreSQL refuses it)
    if after is not None:
        clause.append("(q.projection > ? OR (q.projection = ? AND q.aggregate > ?))")
        args += [storable(after[0]), storable(after[0]), storable(after[1])]
    rows = db_query(f"{_ENTRY} WHERE {' AND '.join(clause)} ORDER BY q.projection, "
                    f"q.aggregate LIMIT {int(limit)}", args)
    return [_entry(r) for r in rows]


def counts(db_query: Any) -> dict[str, tuple[int, int]]:
    """projection -> (quarantined aggregates, held events)."""
    rows = db_query("SELECT q.projection, COUNT(*), SUM((SELECT COUNT(*) FROM "
                    "pv_quarantine_held h WHERE h.projection = q.projection AND "
                    f"h.aggregate = q.aggregate)) FROM pv_quarantine q WHERE q.state = "
                    f"'{QUARANTINED}' GROUP BY q.projection")
    return {str(p): (int(n), int(h or 0)) for p, n, h in rows}


def find(tx: Tx, projection: Projection, aggregate: str, *, lock: bool = False) -> Entry:
    """The quarantined aggregate named by its publisher's id or its store id."""
    store_id = _as_store_id(aggregate)
    suffix = " FOR UPDATE OF q" if lock and projection.db.kind == "postgresql" else ""
    rows = tx.query(f"{_ENTRY} WHERE q.projection = ? AND q.state = '{QUARANTINED}' AND "
                    f"(q.key = ? OR q.aggregate = ?) ORDER BY q.aggregate{suffix}",
                    (projection.name, storable(aggregate), store_id or storable(aggregate)))
    if not rows:
        raise NotQuarantined(f"no quarantined aggregate '{aggregate}' in projection "
                             f"'{projection.name}'")
    return _entry(rows[0])


def _as_store_id(text: str) -> str | None:
    try:
        return UUID(text).hex
    except ValueError:
        return None


def retry(projection: Projection, tx: Tx, aggregate: str) -> dict[str, Any]:
    """Re-apply the held events of one aggregate, in order, inside ``tx``.

    If they apply, the quarantine ends; if one fails again, the aggregate stays
    quarantined from that event, with the new error (the events before it applied).
    """
    entry = find(tx, projection, aggregate, lock=True)
    rows = tx.query("SELECT position, version, topic, state, prev_position FROM "
                    "pv_quarantine_held WHERE projection = ? AND aggregate = ? ORDER BY position",
                    (projection.name, entry.aggregate))
    oid = UUID(entry.aggregate)
    events = [RecordedEvent(int(p), oid, int(v), str(t), bytes(s), None,
                            None if prev is None else int(prev), None, entry.aggregate)
              for p, v, t, s, prev in rows]
    _forget(tx, projection.name, entry.aggregate)
    if events:
        settle(projection, tx, events)
    again = tx.query("SELECT first_position, error_class, error FROM pv_quarantine WHERE "
                     "projection = ? AND aggregate = ?", (projection.name, entry.aggregate))
    outcome: dict[str, Any] = {"projection": projection.name,
                               "aggregate": entry.key or entry.aggregate,
                               "store_id": entry.aggregate, "retried_events": len(events)}
    if again:
        tx.execute("UPDATE pv_quarantine SET since_us = ?, retries = ? WHERE projection = ? "
                   "AND aggregate = ?", (entry.since_us, entry.retries + 1, projection.name,
                                         entry.aggregate))
        first, cls, error = again[0]
        outcome.update(status=QUARANTINED, first_position=int(first), error_class=cls,
                       error=error, applied_events=sum(e.position < int(first) for e in events))
    else:
        outcome.update(status="released", applied_events=len(events))
    _touch(tx, projection.name)
    return outcome


def evict(projection: Projection, tx: Tx, aggregate: str) -> dict[str, Any]:
    """Drop the aggregate's view rows and its held events; later events of it are dropped."""
    entry = find(tx, projection, aggregate, lock=True)
    removed = projection.evict_rows(tx, entry.aggregate)
    _forget(tx, projection.name, entry.aggregate)
    stamp = now_us()
    tx.execute(
        "INSERT INTO pv_quarantine (projection, aggregate, key, state, first_position, "
        "first_version, error_class, error, since_us, updated_us, retries) VALUES "
        "(?,?,?,?,?,?,?,?,?,?,?)",
        (projection.name, entry.aggregate, entry.key, EVICTED, entry.first_position,
         entry.first_version, entry.error_class, entry.error, entry.since_us, stamp,
         entry.retries))
    _touch(tx, projection.name)
    return {"projection": projection.name, "aggregate": entry.key or entry.aggregate,
            "store_id": entry.aggregate, "status": EVICTED, "removed_rows": removed,
            "dropped_held_events": entry.held}


def _forget(tx: Tx, projection: str, aggregate: str) -> None:
    for table in ("pv_quarantine", "pv_quarantine_held"):
        tx.execute(f"DELETE FROM {table} WHERE projection = ? AND aggregate = ?",
                   (projection, aggregate))


def _touch(tx: Tx, projection: str) -> None:
    tx.execute("INSERT INTO pv_tracking (projection, key, value) VALUES (?,?,?) "
               "ON CONFLICT (projection, key) DO UPDATE SET value = excluded.value",
               (projection, CHANGED, now_us()))
