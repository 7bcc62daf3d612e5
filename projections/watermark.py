"""A projection's watermark: the contiguous prefix of the store's log it has applied.

The store's log has gaps (PostgreSQL may skip notification ids), so "contiguous" is
read from the chain every event carries: ``prev_position``, the position of the
event before it in the log (0 for the first). The watermark W starts at 0 and
moves to P whenever the event at P, with ``prev_position == W``, has been applied.

Kafka consumers apply partitions at their own pace (two processes of one group,
a rebalance, a slow partition), so an event may be applied before its
predecessor. Such events are *held*: each transaction that leaves some appends
ONE row to ``pv_watermark_held`` (its (prev_position, position) pairs as one array
of 64-bit integers, a sequence number, the highest position in it); a row goes
once the watermark has passed all of it. Each writer keeps the pairs it has read
in memory (``Held``) and reads only the rows added since, so per batch the cost is
a few statements plus work in proportion to the batch, never to how much is held:
with two processes drifting apart, rewriting one row of every held pair cost
several milliseconds a batch. A row per held event would cost an insert and a
delete each (the audit's unlinked rows: several us an event).

The embedded runner reads the log in order: nothing is ever held and the
watermark is the batch's last position. Writers of one projection take turns:
SQLite through the store's writer lock, PostgreSQL through the row lock the first
statement below takes on the watermark's tracking row; sequence numbers come from
a counter in ``pv_tracking`` under that lock, so a writer never misses a row.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from itertools import chain

from projections.db import Tx
from projections.feed import RecordedEvent

HELD_DDL = ("CREATE TABLE IF NOT EXISTS pv_watermark_held (projection TEXT NOT NULL, "
            "seq {INT} NOT NULL, top {INT} NOT NULL, pairs {BLOB} NOT NULL, "
            "PRIMARY KEY (projection, seq))")
SEQ = "_held_seq"  # the tracking key of the last sequence number given to a held row
# Touches the watermark's row first: on PostgreSQL this takes its lock for the
# transaction, so a second writer of this projection waits here.
_LOCK = ("INSERT INTO pv_tracking (projection, key, value) VALUES (?, ?, 0) "
         "ON CONFLICT (projection, key) DO UPDATE SET value = pv_tracking.value")
_TRACKED = "SELECT key, value FROM pv_tracking WHERE projection = ? AND key IN (?, ?)"
_NEW = "SELECT seq, pairs FROM pv_watermark_held WHERE projection = ? AND seq > ? ORDER BY seq"
_ADD = "INSERT INTO pv_watermark_held (projection, seq, top, pairs) VALUES (?, ?, ?, ?)"
_DONE = "DELETE FROM pv_watermark_held WHERE projection = ? AND top <= ?"
_SET = ("INSERT INTO pv_tracking (projection, key, value) VALUES (?,?,?) "
        "ON CONFLICT (projection, key) DO UPDATE SET value = excluded.value")
CLEAR = "DELETE FROM pv_watermark_held WHERE projection = ?"


def advance(watermark: int, held: dict[int, int],
            events: Sequence[RecordedEvent]) -> int:
    """The watermark once ``events`` are applied; ``held`` (prev -> position) is updated
    in place: the pairs the watermark passed are removed, the batch's later ones added."""
    add_pairs(watermark, held, events)
    while watermark in held:
        watermark = held.pop(watermark)
    return watermark


def add_pairs(watermark: int, held: dict[int, int], events: Sequence[RecordedEvent]) -> None:
    prev = watermark
    for e in events:
        position = e.position
        if position > watermark:
            # An event without prev_position (a caller that guarantees order) follows
            # the one before it in the batch.
            link = e.prev_position if e.prev_position is not None else prev
            held[link] = position
        prev = position


class Held:
    """One writer's copy of a projection's held pairs, and the last row it has read."""

    def __init__(self) -> None:
        self.pairs: dict[int, int] = {}
        self.seen = 0
        self.watermark = 0
        self._pruned_at = 0

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    def advance_in(self, tx: Tx, name: str, key: str, events: Sequence[RecordedEvent]) -> int:
        """The watermark after ``events`` (tracked under ``key``), with the held rows of
        the store brought up to date in ``tx``; the caller writes the watermark."""
        tx.execute(_LOCK, (name, key))
        tracked: dict[str, int] = dict(tx.query(_TRACKED, (name, key, SEQ)))
        watermark, seq = int(tracked.get(key, 0)), int(tracked.get(SEQ, 0))
        if watermark < self.watermark or seq < self.seen:  # cleared meanwhile: start again
            self.reset()
        for row_seq, raw in tx.query(_NEW, (name, self.seen)):
            self.pairs.update(_decode(bytes(raw)))
            self.seen = int(row_seq)
        held = self.pairs
        reached = advance(watermark, held, events)  # the rule the property tests check
        get = held.get
        if all(e.prev_position is not None for e in events):  # every Kafka event: one pass
            mine = [(e.prev_position or 0, e.position) for e in events
                    if e.position > reached and get(e.prev_position or 0) == e.position]
        else:  # a caller without prev_position: the slower, general spelling
            mine = [(p, q) for p, q in _batch_pairs(events, reached) if get(p) == q]
        if mine:
            self.seen = seq = seq + 1
            tx.execute(_ADD, (name, seq, max(q for _, q in mine), _encode(mine)))
            tx.execute(_SET, (name, SEQ, seq))
        if reached > watermark:
            tx.execute(_DONE, (name, reached))
        self.watermark = reached
        self._prune(reached)
        return reached

    def _prune(self, watermark: int) -> None:
        """Drop pairs another writer's progress made stale (now and then: O(held))."""
        if len(self.pairs) > 2 * self._pruned_at + 1000:
            self.pairs = {p: q for p, q in self.pairs.items() if q > watermark}
            self._pruned_at = len(self.pairs)


def _batch_pairs(events: Sequence[RecordedEvent], watermark: int) -> list[tuple[int, int]]:
    """The batch's (prev, position) pairs still ahead of ``watermark``."""
    out = []
    prev = watermark
    for e in events:
        if e.position > watermark:
            out.append((e.prev_position if e.prev_position is not None else prev, e.position))
        prev = e.position
    return out


def _decode(raw: bytes) -> dict[int, int]:
    flat = array("q")
    flat.frombytes(raw)
    if sys.byteorder == "big":
        flat.byteswap()  # stored little-endian, whatever machine wrote it
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _encode(pairs: Sequence[tuple[int, int]] | dict[int, int]) -> bytes:
    flat = array("q", chain.from_iterable(pairs.items() if isinstance(pairs, dict) else pairs))
    if sys.byteorder == "big":
        flat.byteswap()
    return flat.tobytes()
