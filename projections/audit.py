"""The audit trail: every stored event, hash-chained in store order.

hash(n) = SHA-256(prev_hash(n) || canonical(n)), where canonical(n) is
``"{position}\\n{originator_id}\\n{version}\\n{topic}\\n"`` in UTF-8 followed by the
exact stored state bytes, and prev_hash of the first event is 64 zeros. Any
change to a stored event (its bytes, topic, version, position), a deletion or a
reordering changes every later hash; ``verify`` recomputes the chain from the
event store itself and names the first position where it breaks.

Ordering, what the caller must guarantee: the chain is appended strictly in
store order. Each ``RecordedEvent`` should carry ``prev_position`` (the
position of the previous event in the store's log, 0 for the first); an event
is appended only once its predecessor is recorded, and events that arrive
early (another Kafka partition lags) are held back in ``pv_audit_pending``, in
the same transaction as the caller's tracking rows, so holding back is as
durable as appending. Without ``prev_position`` the caller guarantees that the
batch, sorted by position, continues the log with nothing missing (the
embedded runner's case). Re-delivered positions are ignored.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple, cast
from uuid import UUID

from projections.base import Projection
from projections.db import Tx, chunks, in_list
from projections.feed import RecordedEvent

GENESIS = "0" * 64
# Stored columns; kind, recorded_at (ISO) and prev_hash are derived when read (smaller rows,
# faster replay): prev_hash is the hash of the row before in position order.
COLUMNS = ("position", "aggregate_id", "store_id", "version", "type", "time", "recorded_us",
           "actor", "source", "event_id", "hash")


def chain_hash(prev_hash: str, position: int, originator_id: str, version: int, topic: str,
               state: bytes) -> str:
    # The same bytes as prev_hash.encode() + canonical, built with one encode (per event).
    return hashlib.sha256(f"{prev_hash}{position}\n{originator_id}\n{version}\n{topic}\n"
                          .encode() + state).hexdigest()


class AuditTrailProjection(Projection):
    """Every stored event with its place in the hash chain."""

    name = "audit"
    topics = ("pmo.",)
    tables = ("pv_audit", "pv_audit_pending")
    deferred_indexes = ("pv_audit_store_id",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._keys: dict[str, str] = {}  # store id -> publisher's id (from Created events)
        self._head = 0

    def ddl(self) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS pv_audit (position {PK_INT}, aggregate_id TEXT, "
            "store_id TEXT NOT NULL, version {INT} NOT NULL, type TEXT NOT NULL, time TEXT, "
            "recorded_us {INT} NOT NULL, actor TEXT, source TEXT, event_id TEXT, "
            "hash TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS pv_audit_store_id ON pv_audit (store_id, version)",
            "CREATE TABLE IF NOT EXISTS pv_audit_pending (position {PK_INT}, "
            "prev_position {INT}, originator_id TEXT NOT NULL, version {INT} NOT NULL, "
            "topic TEXT NOT NULL, state {BLOB} NOT NULL)",
        ]

    def clear(self, *, rebuilding: bool = False) -> None:
        self._keys.clear()
        super().clear(rebuilding=rebuilding)

    def head(self, tx: Tx) -> tuple[int, str]:
        rows = tx.query("SELECT position, hash FROM pv_audit ORDER BY position DESC LIMIT 1")
        return (int(rows[0][0]), str(rows[0][1])) if rows else (0, GENESIS)

    def apply(self, tx: Tx, events: Sequence[RecordedEvent]) -> None:
        last, prev_hash = self.head(tx)
        new = [e for e in events if e.position > last]
        if any(a.position >= b.position for a, b in itertools.pairwise(new)):
            new = sorted({e.position: e for e in new}.values(), key=_position)
        # Held events come in position order, a page at a time and only their positions:
        # when a partition lags, thousands wait, and the chain usually stops long before
        # the last of them (reading them all, in full, every batch halved the consumer).
        first = _held_page(tx, last)
        candidates: Iterable[RecordedEvent | _Pending] = new
        if first:
            candidates = heapq.merge(new, _held_stream(tx, first), key=_position)
        chain: list[RecordedEvent | _Pending] = []
        for c in candidates:
            if c.position <= last:
                continue  # a held event delivered again: the merge gives the new copy first
            expected = c.prev_position
            if expected is not None and expected != last:
                break  # its predecessor has not arrived yet: hold back this and later ones
            chain.append(c)
            last = c.position
        chained = self._load_held(tx, chain) if first else cast(list[RecordedEvent], chain)
        self._head = last
        self._resolve_keys(tx, chained)
        keys = self._keys
        rows = []
        for e in chained:
            sid = e.oid_hex
            h = chain_hash(prev_hash, e.position, sid, e.originator_version, e.topic, e.state)
            p = e.payload
            time = p.get("time")
            rows.append((e.position, keys.get(sid), sid, e.originator_version, e.topic,
                         time["_data_"] if type(time) is dict else time, e.recorded_us,
                         p.get("actor"), p.get("source"), p.get("event_id"), h))
            prev_hash = h
        tx.insert_many("pv_audit", COLUMNS, rows)
        if first:
            tx.executemany("DELETE FROM pv_audit_pending WHERE position <= ?", [(last,)])
        # A re-delivered event that is held already keeps its row (DO NOTHING).
        tx.executemany(
            "INSERT INTO pv_audit_pending (position, prev_position, originator_id, version, "
            "topic, state) VALUES (?,?,?,?,?,?) ON CONFLICT (position) DO NOTHING",
            [(e.position, e.prev_position, e.oid_hex, e.originator_version, e.topic, e.state)
             for e in new if e.position > last])

    @staticmethod
    def _load_held(tx: Tx, chained: list[RecordedEvent | _Pending]) -> list[RecordedEvent]:
        """``chained`` with each held event read back in full from ``pv_audit_pending``."""
        wanted = [c.position for c in chained if isinstance(c, _Pending)]
        if not wanted:
            return cast(list[RecordedEvent], chained)
        full = {}
        for part in chunks(wanted):
            for pos, prev, oid, version, topic, state in tx.query(
                    "SELECT position, prev_position, originator_id, version, topic, state "
                    f"FROM pv_audit_pending WHERE position IN {in_list(len(part))}", part):
                full[pos] = _held(pos, prev, oid, version, topic, bytes(state))
        return [full[c.position] if isinstance(c, _Pending) else c for c in chained]

    def applied_position(self, events: Sequence[RecordedEvent]) -> int:
        # The chain's head: events held back for a missing predecessor are not applied yet.
        return self._head

    def _resolve_keys(self, tx: Tx, events: Sequence[RecordedEvent]) -> None:
        for e in events:
            if e.originator_version == 1 and "key" in e.payload:
                self._keys[e.oid_hex] = e.payload["key"]
        missing = list({e.oid_hex for e in events} - self._keys.keys())
        for part in chunks(missing):
            for sid, key in tx.query("SELECT store_id, aggregate_id FROM pv_audit WHERE "
                                     f"version = 1 AND store_id IN {in_list(len(part))}", part):
                if key is not None:
                    self._keys[sid] = key

    def count(self) -> int:
        return int(self.db.query("SELECT COUNT(*) FROM pv_audit")[0][0])


HELD_PAGE = 1000


def _held_page(tx: Tx, after: int) -> list[_Pending]:
    return [_Pending(pos, prev) for pos, prev in tx.query(
        "SELECT position, prev_position FROM pv_audit_pending WHERE position > ? "
        "ORDER BY position LIMIT ?", (after, HELD_PAGE))]


def _held_stream(tx: Tx, page: list[_Pending]) -> Iterator[_Pending]:
    """The held events from ``page`` on, in position order, read a page at a time."""
    while True:
        yield from page
        if len(page) < HELD_PAGE:
            return
        page = _held_page(tx, page[-1].position)


def _position(event: RecordedEvent | _Pending) -> int:
    return event.position


class _Pending(NamedTuple):
    """A held event before its turn: all the chain needs to place it."""

    position: int
    prev_position: int | None


def _held(pos: int, prev: int | None, oid: str, version: int, topic: str,
          state: bytes) -> RecordedEvent:
    return RecordedEvent(pos, UUID(oid), version, topic, state, None, prev)
