"""The audit trail: every stored event, hash-chained in store order.

For the event at ``position`` (definition 2, since 2026-11-30):

    digest(n) = SHA-256(canonical(n)), canonical(n) = ``"{position}\\n{originator_id}\\n
                {version}\\n{topic}\\n{recorded_us}\\n{source}\\n{event_id}\\n"`` in
                UTF-8 followed by the exact stored state bytes
    hash(n)   = SHA-256(prev_hash(n) || digest(n)), over the two hex strings in ASCII

and prev_hash of the first event is 64 zeros. ``recorded_us`` is the recording
time in integer microseconds since the epoch (what ``event_times`` holds and every
``as_of`` answer reads); ``source`` and ``event_id`` are the inbound receipt the
event was stored under (empty when it has none). Definition 1 (before 2026-11-30)
had neither line; a trail written under it is dropped and rebuilt on start
(``DIGEST_VERSION``). Any change to a stored event (its bytes, topic, version,
position, recording time), a deletion or a reordering changes every later hash;
``projections.audit_verify`` recomputes the chain from the event store itself.

Why two hashes: each event's digest needs only that event, so it is computed
before the store's write lock is taken (``prepare``), by whichever process
consumed the event; only the link, one SHA-256 of 128 bytes, is sequential.
Several ``pmo consume audit`` processes (partitions split between them) thus
overlap all but the link.

Ordering: the chain is appended strictly in store order. Each ``RecordedEvent``
should carry ``prev_position`` (the position of the previous event in the store's
log, 0 for the first). Every event's row (``pv_audit``) is written when it
arrives, with its digest; its link (``pv_audit_chain``: position, hash) once its
predecessor's is: a row waits while another Kafka partition lags, and the
transaction that brings the missing event links every waiting row the chain then
reaches. Linked rows are thus always the log's prefix up to the head; reads show
only those. Without ``prev_position``
the caller guarantees that the batch, sorted by position, continues the log with
nothing missing (the embedded runner's case). Re-delivered positions are ignored.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

from projections.base import TRACKING_DDL, Projection
from projections.db import Tx, chunks, in_list
from projections.feed import RecordedEvent

GENESIS = "0" * 64
# The columns reads show; kind, recorded_at (ISO) and prev_hash are derived when read
# (smaller rows, faster replay): prev_hash is the hash of the row before in position order.
COLUMNS = ("position", "aggregate_id", "store_id", "version", "type", "time", "recorded_us",
           "actor", "source", "event_id", "hash")
# A row of pv_audit: the read columns but the hash (pv_audit_chain holds it), then what
# chaining needs.
ROW = (*COLUMNS[:-1], "prev_position", "digest")
_P, _PREV, _DIGEST = 0, len(ROW) - 2, len(ROW) - 1
UNCHAINED_PAGE = 1000
# The rows written but not linked yet: their predecessor has not arrived.
UNLINKED = ("FROM pv_audit WHERE position > (SELECT COALESCE(MAX(position), 0) "
            "FROM pv_audit_chain)")


DIGEST_VERSION = 2  # see the module's docstring; kept in pv_audit_meta


def digest(position: int, originator_id: str, version: int, topic: str,
           recorded_us: int | None, source: str | None, event_id: str | None,
           state: bytes) -> str:
    # One encode for the text part, then the stored bytes as they are. A missing value
    # (no receipt, no recording time) is the empty string.
    return hashlib.sha256(
        f"{position}\n{originator_id}\n{version}\n{topic}\n"
        f"{'' if recorded_us is None else recorded_us}\n{source or ''}\n{event_id or ''}\n"
        .encode() + state).hexdigest()


def link(prev_hash: str, event_digest: str) -> str:
    return hashlib.sha256((prev_hash + event_digest).encode()).hexdigest()


class AuditTrailProjection(Projection):
    """Every stored event with its place in the hash chain."""

    name = "audit"
    topics = ("pmo.",)
    tables = ("pv_audit", "pv_audit_chain")
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
            "prev_position {INT}, digest TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS pv_audit_store_id ON pv_audit (store_id, version)",
            # The chain, apart: a row of pv_audit is written once, when its event arrives,
            # and its link once its predecessor's is (both appends, never an update).
            "CREATE TABLE IF NOT EXISTS pv_audit_chain (position {PK_INT}, "
            "hash TEXT NOT NULL)",
            # Which digest definition the rows were written under (never cleared).
            "CREATE TABLE IF NOT EXISTS pv_audit_meta (key TEXT PRIMARY KEY, "
            "value {INT} NOT NULL)",
        ]

    def create_tables(self) -> None:
        self._drop_older_layout()
        super().create_tables()
        with self.db.transaction() as tx:
            tx.execute("INSERT INTO pv_audit_meta (key, value) VALUES ('digest', ?) "
                       "ON CONFLICT (key) DO NOTHING", (DIGEST_VERSION,))

    def _drop_older_layout(self) -> None:
        """A trail written under an older definition (before the digest column, or before
        the digest covered recording time and receipt) is dropped with its positions:
        the runner or consumer rebuilds it from the start."""
        columns = self.db.columns("pv_audit")
        if not columns:
            return
        if "digest" in columns and self.db.columns("pv_audit_meta"):
            rows = self.db.query("SELECT value FROM pv_audit_meta WHERE key = 'digest'")
            if rows and int(rows[0][0]) == DIGEST_VERSION:
                return
        with self.db.transaction() as tx:
            for table in ("pv_audit", "pv_audit_chain", "pv_audit_pending", "pv_audit_meta"):
                tx.execute(f"DROP TABLE IF EXISTS {table}")
            tx.execute(self.db.ddl(TRACKING_DDL))
            tx.execute("DELETE FROM pv_tracking WHERE projection = ?", (self.name,))

    def clear(self, *, rebuilding: bool = False) -> None:
        self._keys.clear()
        super().clear(rebuilding=rebuilding)

    def prepare(self, events: Sequence[RecordedEvent]) -> list[tuple[Any, ...]]:
        """The batch's rows, hash left out, in position order: all the per-event work."""
        if any(a.position >= b.position for a, b in itertools.pairwise(events)):
            events = sorted({e.position: e for e in events}.values(), key=_position)
        self._resolve_keys(events)
        keys = self._keys
        rows = []
        for e in events:
            sid = e.oid_hex
            p = e.payload
            time = p.get("time")
            source, event_id = p.get("source"), p.get("event_id")
            row = (e.position, keys.get(sid), sid, e.originator_version, e.topic,
                   time["_data_"] if type(time) is dict else time, e.recorded_us,
                   p.get("actor"), source, event_id, e.prev_position,
                   digest(e.position, sid, e.originator_version, e.topic, e.recorded_us,
                          source, event_id, e.state))
            if b"\\u0000" in e.state:  # rare: only an older version stored a NUL
                row = _without_nul(row)
            rows.append(row)
        return rows

    def apply(self, tx: Tx, events: Sequence[RecordedEvent], prepared: Any = None) -> None:
        rows: list[tuple[Any, ...]] = prepared if prepared is not None else self.prepare(events)
        last, prev_hash = self.head(tx)
        new = [r for r in rows if r[_P] > last]
        highest = tx.query("SELECT MAX(position) FROM pv_audit")[0][0]
        waiting = highest is not None and highest > last  # rows wait for a predecessor
        if waiting and new:
            # Rows already waiting may come again (a re-delivery): keep the stored ones.
            again: set[int] = set()
            for part in chunks([r[_P] for r in new]):
                again.update(p for (p,) in tx.query(
                    f"SELECT position FROM pv_audit WHERE position IN {in_list(len(part))}",
                    part))
            if again:
                new = [r for r in new if r[_P] not in again]
        candidates: Iterator[tuple[Any, ...]] = iter(new)
        if waiting:
            candidates = heapq.merge(new, _waiting(tx, last), key=_first)
        links: list[tuple[int, str]] = []
        for c in candidates:
            expected = c[_PREV]
            if expected is not None and expected != last:
                break  # its predecessor has not arrived yet: this and later ones wait
            prev_hash = link(prev_hash, c[_DIGEST])
            last = c[_P]
            links.append((last, prev_hash))
        self._head = last
        tx.insert_many("pv_audit", ROW, new)
        tx.insert_many("pv_audit_chain", ("position", "hash"), links)

    def head(self, tx: Tx) -> tuple[int, str]:
        """(position, hash) of the chain's last link."""
        rows = tx.query("SELECT position, hash FROM pv_audit_chain ORDER BY position DESC "
                        "LIMIT 1")
        return (int(rows[0][0]), str(rows[0][1])) if rows else (0, GENESIS)

    def applied_position(self, events: Sequence[RecordedEvent]) -> int:
        # The chain's head: rows waiting for a missing predecessor are not applied yet.
        return self._head

    def _resolve_keys(self, events: Sequence[RecordedEvent]) -> None:
        for e in events:
            if e.originator_version == 1 and "key" in e.payload:
                self._keys[e.oid_hex] = e.payload["key"]
        missing = list({e.oid_hex for e in events} - self._keys.keys())
        for part in chunks(missing):
            for sid, key in self.db.query("SELECT store_id, aggregate_id FROM pv_audit WHERE "
                                          f"version = 1 AND store_id IN {in_list(len(part))}",
                                          part):
                if key is not None:
                    self._keys[sid] = key

    def count(self) -> int:
        """Events in the chain (rows waiting for a predecessor are not counted)."""
        return int(self.db.query("SELECT COUNT(*) FROM pv_audit_chain")[0][0])

    def waiting(self) -> int:
        """Rows written but not yet chained (their predecessor has not arrived)."""
        return int(self.db.query(f"SELECT COUNT(*) {UNLINKED}")[0][0])


def _waiting(tx: Tx, after: int) -> Iterator[tuple[Any, ...]]:
    """Unchained rows after ``after`` as (position, ..., prev_position, digest), in order,
    read a page at a time: the chain usually stops long before the last of them."""
    while True:
        page = tx.query("SELECT position, prev_position, digest FROM pv_audit WHERE "
                        "position > ? ORDER BY position LIMIT ?",
                        (after, UNCHAINED_PAGE))
        for position, prev, event_digest in page:
            yield _as_row(position, prev, event_digest)
        if len(page) < UNCHAINED_PAGE:
            return
        after = page[-1][0]


_FILLER = (None,) * (_PREV - 1)


def _as_row(position: int, prev: int | None, event_digest: str) -> tuple[Any, ...]:
    return (position, *_FILLER, prev, event_digest)


def _first(row: tuple[Any, ...]) -> Any:
    return row[0]


def _position(event: RecordedEvent) -> int:
    return event.position


def _without_nul(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The row with each NUL in its text written ``\\u0000``: PostgreSQL text cannot hold
    NUL, and the audit trail (which never quarantines) must take every stored event. The
    digest, computed before, covers the stored bytes, so verify is unaffected."""
    return tuple(v.replace("\x00", "\\u0000") if isinstance(v, str) else v for v in row)
