"""A projection's watermark: the contiguous prefix of the store's log it has applied.

The store's log has gaps (PostgreSQL may skip notification ids), so "contiguous" is
read from the chain every event carries: ``prev_position``, the position of the
event before it in the log (0 for the first). The watermark W starts at 0 and
moves to P whenever the event at P, with ``prev_position == W``, has been applied.

Kafka consumers apply partitions at their own pace (two processes of one group,
a rebalance, a slow partition), so an event may be applied before its
predecessor. Such events are *held*: their (prev_position, position) pairs wait
in ``pv_watermark_held``, one row per projection holding all pairs as one array
of 64-bit integers, until the chain reaches them. Per batch that is one read and
one write of that row, whatever the batch's size: about 0.1 us an event to build
the map, where a row per held event would cost an insert and a delete (measured
for the audit's unlinked rows: several us an event). A row stays small because
held events are those applied ahead of a lagging partition: a member that stops
loses its partitions after the session timeout and the chain closes again.

The embedded runner reads the log in order: nothing is ever held and the
watermark is the batch's last position. Writers of one projection take turns
(SQLite: the store's writer lock; PostgreSQL: the row lock the first statement
below takes), so two processes never merge the held pairs from the same snapshot.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence

from projections.db import Tx
from projections.feed import RecordedEvent

HELD_DDL = ("CREATE TABLE IF NOT EXISTS pv_watermark_held (projection TEXT PRIMARY KEY, "
            "pairs {BLOB} NOT NULL)")
# Touches the row first: on PostgreSQL this takes its lock for the transaction, so a
# second writer of this projection waits here instead of merging a stale snapshot.
_LOCK = ("INSERT INTO pv_watermark_held (projection, pairs) VALUES (?, ?) "
         "ON CONFLICT (projection) DO UPDATE SET pairs = pv_watermark_held.pairs")
_READ = "SELECT pairs FROM pv_watermark_held WHERE projection = ?"
_TRACKED = "SELECT value FROM pv_tracking WHERE projection = ? AND key = ?"
_WRITE = "UPDATE pv_watermark_held SET pairs = ? WHERE projection = ?"
CLEAR = "DELETE FROM pv_watermark_held WHERE projection = ?"
_EMPTY = b""


def advance(watermark: int, held: dict[int, int],
            events: Sequence[RecordedEvent]) -> int:
    """The watermark once ``events`` are applied; ``held`` (prev -> position) is updated
    in place to the pairs still ahead of it."""
    prev = watermark
    for e in events:
        position = e.position
        if position > watermark:
            # An event without prev_position (a caller that guarantees order) follows
            # the one before it in the batch.
            link = e.prev_position if e.prev_position is not None else prev
            held[link] = position
        prev = position
    while watermark in held:
        watermark = held.pop(watermark)
    if held:
        stale = [k for k, v in held.items() if v <= watermark]
        for k in stale:
            del held[k]
    return watermark


def advance_in(tx: Tx, name: str, key: str, events: Sequence[RecordedEvent]) -> int:
    """The watermark after ``events``: ``advance`` from the one tracked under ``key`` in
    ``pv_tracking``, with the held pairs read from and written back to the store in ``tx``
    (the caller writes the watermark)."""
    tx.execute(_LOCK, (name, _EMPTY))
    rows = tx.query(_TRACKED, (name, key))
    watermark = int(rows[0][0]) if rows else 0
    raw = tx.query(_READ, (name,))[0][0]
    held = _decode(bytes(raw)) if raw else {}
    had = bool(held)
    reached = advance(watermark, held, events)
    if held or had:
        tx.execute(_WRITE, (_encode(held), name))
    return reached


def held_count(tx: Tx, name: str) -> int:
    rows = tx.query(_READ, (name,))
    return len(rows[0][0]) // 16 if rows and rows[0][0] else 0


def _decode(raw: bytes) -> dict[int, int]:
    flat = array("q")
    flat.frombytes(raw)
    if sys.byteorder == "big":
        flat.byteswap()  # stored little-endian, whatever machine wrote it
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _encode(held: dict[int, int]) -> bytes:
    flat = array("q")
    for k, v in held.items():
        flat.append(k)
        flat.append(v)
    if sys.byteorder == "big":
        flat.byteswap()
    return flat.tobytes()
