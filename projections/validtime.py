"""Valid time beside recording time (CONTRACT section 13).

An event's valid time is its publisher's ``time`` (kept in the envelope), or the valid
time of its aggregate's previous event if that is later: within one aggregate valid
time never runs backwards. Recording time never runs backwards within one aggregate
either (each version is stored after the one before). So the events of one aggregate
"recorded at or before R and valid at or before T" are always a prefix of its events in
version order: versions 1..cut, where cut is the highest version with both. The state
at (valid_at=T, as_of=R) is the fold of exactly that prefix.

Example: a project's events with times June 3 (v1), July 2 (v2), June 20 (v3, a cost
back-dated to June, recorded after v2) have valid times June 3, July 2, July 2: at
``valid_at`` = June 30 only v1 counts. Had the June 20 cost been recorded as v2 (right
after the June 3 event), its valid time would be June 20 and it would count.

Where the cut is found: the projections keep each event's valid time (the running
maximum, ``valid_us`` in the doc) beside its rows (project figure rows, portfolio times),
so a read knows a version inside the prefix and, usually, one beyond it; only the few
stored events between the two are read from the event store, and their ``time`` decides.
Program and manager reads fold their (few) events from the store directly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from domain.application import PmoApplication
from projections.base import TRACKING_DDL, Projection
from projections.documents import Versioned
from projections.feed import RecordedEvent, from_stored, iso_micros, micros

# Recording time "now": every stored version (the store's instants are all before it).
FOREVER = datetime(9999, 12, 31, tzinfo=UTC)


def time_us(e: RecordedEvent) -> int:
    """The publisher's ``time`` of a stored event, in microseconds since the epoch (0 when an
    event has none: then only its predecessors decide its valid time)."""
    raw = e.payload.get("time")
    text = raw["_data_"] if type(raw) is dict else raw
    return iso_micros(text) if isinstance(text, str) else 0


def advance(doc: Versioned, e: RecordedEvent) -> int:
    """Carry the aggregate's valid time through ``e`` in its doc (``valid_us``); returns it.
    A doc the fold just created has none yet: its first event's time starts it."""
    valid_us = max(int(doc.get("valid_us") or 0), time_us(e))
    doc["valid_us"] = valid_us
    return valid_us


def top_version(app: PmoApplication, originator_id: UUID,
                recorded: datetime | None) -> int | None:
    """The aggregate's version as recorded at ``recorded`` (None: as stored now)."""
    return app.ledger.version_at(originator_id, recorded or FOREVER)


def cut_version(app: PmoApplication, originator_id: UUID, top: int, valid: datetime,
                known: tuple[int, int] | None = None,
                upper: int | None = None) -> tuple[int, list[RecordedEvent]]:
    """The highest version <= ``top`` whose valid time is at or before ``valid`` (0: none).

    ``known`` (version, its valid time) is a version known to be in the prefix, ``upper``
    one known to be beyond it (both from a projection's rows; None: unknown): only the
    stored events strictly between them are read. Also returns the events read inside
    the prefix (after ``known``), in version order, for a caller that folds them.
    """
    limit = micros(valid)
    start, running = known if known is not None else (0, 0)
    last = top if upper is None else min(top, upper - 1)
    if last <= start:
        return start, []
    stored = app.recorder.select_events(originator_id, gt=start or None, lte=last)
    events = from_stored(app.mapper, stored)
    taken: list[RecordedEvent] = []
    for e in events:
        running = max(running, time_us(e))
        if running > limit:
            break
        taken.append(e)
    return (taken[-1].originator_version if taken else start), taken


def prefix(app: PmoApplication, originator_id: UUID, valid: datetime,
           recorded: datetime | None) -> list[RecordedEvent] | None:
    """The events of the prefix (see the module's docstring); None: nothing recorded by R."""
    top = top_version(app, originator_id, recorded)
    if top is None:
        return None
    return cut_version(app, originator_id, top, valid)[1]


def drop_without_valid_time(projection: Projection, table: str, column: str | None) -> None:
    """A view written before valid time (``table`` exists without ``column``, or, with
    ``column`` None, the projection's first table exists without ``table``) is dropped
    with its positions: the runner or consumer rebuilds it from the start."""
    if column is None:
        if not projection.db.columns(projection.tables[0]) or projection.db.columns(table):
            return
    else:
        columns = projection.db.columns(table)
        if not columns or column in columns:
            return
    with projection.db.transaction() as tx:
        for name in projection.tables:
            tx.execute(f"DROP TABLE IF EXISTS {name}")
        tx.execute(projection.db.ddl(TRACKING_DDL))
        tx.execute("DELETE FROM pv_tracking WHERE projection = ?", (projection.name,))
