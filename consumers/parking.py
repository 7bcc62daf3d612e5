"""Parked, not rejected: inbound events that name an aggregate that does not exist *yet*.

Kafka keeps order per subject only, so a project's proposal can overtake its
portfolio's opening published just before it on another partition. ``pmo ingest``
therefore parks an event refused only as ``unknown-aggregate``, and retries it
with backoff (0.2 s doubling up to 5 s) for ``PMO_PARK_SECONDS`` (default 300)
from when it was first parked; then it goes to ``pmo.inbound.rejected`` with the
reason, as any refusal does.

Order per subject is kept: once a subject has an event parked, a later refusal of
the same subject (whatever its reason: "approve" before the parked "propose") is
parked behind it, and retries take each subject's parked events strictly in the
order they came, the next one as soon as the one before it is decided.

Where: a table of the event store's database (``pmo_parked``), not a retry topic.
The park insert is one short transaction right after the batch's own, before the
batch's offsets are committed, so a parked event survives ``kill -9`` of every
worker; the row is keyed by the CloudEvent's (source, id), so a re-read batch parks
nothing twice; ``GET /v1/receipts`` reads ``parked`` from it; and retrying in
due-time order, deleting on success, is a query (a retry topic would need a
consumer that holds partitions paused until each message is due, and could not
answer a receipt). A retried event that is stored leaves the table in the same
pass; one refused for good is dead-lettered (produced, acknowledged) before its row
goes, so a crash in between can only dead-letter it twice (dead letters are
at-least-once). Several ``pmo ingest`` processes may retry one row at once: the
second answers ``duplicate`` (the receipt is unique), never a second event.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from kafka import KafkaProducer

from consumers.deadletters import KafkaRefusalSink
from consumers.inbound import read
from ingest.service import Inbound, IngestService, Refusal
from pmo.settings import Settings

log = logging.getLogger(__name__)

TABLE = "pmo_parked"
PARKABLE = "unknown-aggregate"  # domain.errors.UnknownAggregate.code
FIRST_DELAY_S = 0.2
MAX_DELAY_S = 5.0  # a parent that arrives late is found at most this long after
RETRY_ROWS = 20_000  # read per pass, oldest first


@dataclass(frozen=True, slots=True)
class Parked:
    source: str
    event_id: str
    subject: str
    reason: str
    raw: bytes
    headers: tuple[tuple[str, bytes], ...]
    key: bytes | None
    origin: str
    first_us: int
    attempts: int


class Parking:
    """The ``pmo_parked`` table of one event store (SQLite or PostgreSQL)."""

    def __init__(self, recorder: Any) -> None:
        self._datastore = recorder.datastore
        if isinstance(recorder, PostgresApplicationRecorder):
            table, mark, blob = f'"{self._datastore.schema}".{TABLE}', "%s", "BYTEA"
        elif isinstance(recorder, SQLiteApplicationRecorder):
            table, mark, blob = TABLE, "?", "BLOB"
        else:
            raise TypeError(f"parking needs a SQLite or PostgreSQL event store, not {recorder}")
        m = mark
        self._insert = (f"INSERT INTO {table} (source, event_id, subject, reason, raw, headers, "
                        f"key, origin, first_us, due_us, attempts) VALUES ({m},{m},{m},{m},{m},"
                        f"{m},{m},{m},{m},{m},0) ON CONFLICT (source, event_id) DO NOTHING")
        self._all = (f"SELECT source, event_id, subject, reason, raw, headers, key, origin, "
                     f"first_us, attempts, due_us FROM {table} ORDER BY first_us, event_id "
                     f"LIMIT {m}")
        self._next_due = f"SELECT MIN(due_us) FROM {table}"
        self._subjects = f"SELECT DISTINCT subject FROM {table} WHERE subject IN "
        self._mark = m
        self._later = (f"UPDATE {table} SET due_us = {m}, attempts = attempts + 1, reason = {m} "
                       f"WHERE source = {m} AND event_id = {m}")
        self._delete = f"DELETE FROM {table} WHERE source = {m} AND event_id = {m}"
        self._reason = f"SELECT reason FROM {table} WHERE source = {m} AND event_id = {m}"
        self._count = f"SELECT COUNT(*) FROM {table}"
        with self._datastore.transaction(commit=True) as c:
            c.execute(f"CREATE TABLE IF NOT EXISTS {table} (source TEXT NOT NULL, "
                      f"event_id TEXT NOT NULL, subject TEXT NOT NULL, reason TEXT NOT NULL, "
                      f"raw {blob} NOT NULL, headers TEXT NOT NULL, key {blob}, "
                      "origin TEXT NOT NULL, first_us BIGINT NOT NULL, due_us BIGINT NOT NULL, "
                      "attempts INTEGER NOT NULL, PRIMARY KEY (source, event_id))")
            c.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_subject ON {table} (subject)")

    def park(self, refusals: Sequence[Refusal], keys: dict[str, bytes | None]) -> None:
        """Keep ``refusals`` (one transaction, durable on return); a row there stays."""
        now = _now_us()
        due = now + int(FIRST_DELAY_S * 1e6)
        rows = [(r.source or "", r.event_id or "", r.subject or "", r.reason, r.raw,
                 _headers_text(r.headers), keys.get(r.origin), r.origin, now + i, due)
                for i, r in enumerate(refusals)]  # + i: first_us orders one batch too
        with self._datastore.transaction(commit=True) as c:
            c.executemany(self._insert, rows)

    def anything_due(self) -> bool:
        """A cheap check before reading the rows."""
        with self._datastore.transaction(commit=False) as c:
            c.execute(self._next_due)
            row = c.fetchone()
        first = next(iter(row.values())) if isinstance(row, dict) else row[0]
        return first is not None and int(first) <= _now_us()

    def waiting(self, subjects: set[str]) -> set[str]:
        """Which of ``subjects`` have events parked."""
        if not subjects:
            return set()
        names = sorted(subjects)
        with self._datastore.transaction(commit=False) as c:
            c.execute(self._subjects + f"({','.join([self._mark] * len(names))})", names)
            rows = c.fetchall()
        return {str(next(iter(r.values())) if isinstance(r, dict) else r[0]) for r in rows}

    def rows(self, limit: int = RETRY_ROWS) -> list[tuple[Parked, int]]:
        """Parked events with their due times, in the order they were parked."""
        with self._datastore.transaction(commit=False) as c:
            c.execute(self._all, (limit,))
            rows = c.fetchall()
        out = []
        for row in rows:
            values = list(row.values()) if isinstance(row, dict) else list(row)
            (source, event_id, subject, reason, raw, headers, key, origin, first_us, attempts,
             due_us) = values
            out.append((Parked(str(source), str(event_id), str(subject), str(reason),
                               bytes(raw), _headers_of(str(headers)),
                               None if key is None else bytes(key), str(origin),
                               int(first_us), int(attempts)), int(due_us)))
        return out

    def later(self, parked: Parked, reason: str) -> None:
        delay = min(FIRST_DELAY_S * 2 ** (parked.attempts + 1), MAX_DELAY_S)
        with self._datastore.transaction(commit=True) as c:
            c.execute(self._later, (_now_us() + int(delay * 1e6), reason, parked.source,
                                    parked.event_id))

    def done(self, parked: Sequence[Parked]) -> None:
        if parked:
            with self._datastore.transaction(commit=True) as c:
                c.executemany(self._delete, [(p.source, p.event_id) for p in parked])

    def parked(self, source: str, event_id: str) -> str | None:
        """The reason ``(source, event_id)`` waits, or None when it is not parked."""
        with self._datastore.transaction(commit=False) as c:
            c.execute(self._reason, (source, event_id))
            row = c.fetchone()
        if row is None:
            return None
        return str(row["reason"] if isinstance(row, dict) else row[0])

    def count(self) -> int:
        with self._datastore.transaction(commit=False) as c:
            c.execute(self._count)
            row = c.fetchone()
        return int(next(iter(row.values())) if isinstance(row, dict) else row[0])


class ParkingSink(KafkaRefusalSink):
    """Dead letters as ``KafkaRefusalSink``, but an ``unknown-aggregate`` refusal is parked."""

    def __init__(self, producer: KafkaProducer, settings: Settings, parking: Parking) -> None:
        super().__init__(producer, settings)
        self.parking = parking
        self.parked = 0

    def record_refusals(self, refusals: Sequence[Refusal]) -> None:
        rejected = [r for r in refusals if r.kind == "rejected" and r.source and r.event_id]
        behind = self.parking.waiting({r.subject or "" for r in rejected})
        waiting = []
        for r in rejected:  # in batch order: a refusal behind a parked one waits too
            if r.code == PARKABLE or (r.subject or "") in behind:
                waiting.append(r)
                behind.add(r.subject or "")
        if waiting:
            self.parking.park(waiting, self.keys)
            self.parked += len(waiting)
            log.info("parked %d event(s) of %d subject(s) until what they name exists "
                     "(%d parked so far)", len(waiting), len({r.subject for r in waiting}),
                     self.parked)
        super().record_refusals([r for r in refusals if not any(r is w for w in waiting)])


class Retrier:
    """Retries the parked events that are due: each subject's in the order they came."""

    def __init__(self, ingest: IngestService, sink: KafkaRefusalSink, parking: Parking,
                 park_seconds: float, max_bytes: int) -> None:
        self._ingest = ingest  # with no refusal sink: outcomes are decided here
        self._sink = sink
        self._parking = parking
        self._park_us = int(park_seconds * 1e6)
        self._max_bytes = max_bytes
        self.stored = self.rejected = 0

    def step(self) -> int:
        """One pass: the due head of every subject's queue, again and again while the
        heads move (the next of a subject is tried as soon as the one before it is
        decided). Returns how many were tried."""
        if not self._parking.anything_due():
            return 0
        queues: dict[str, list[tuple[Parked, int]]] = {}
        for parked, due_us in self._parking.rows():
            queues.setdefault(parked.subject, []).append((parked, due_us))
        now = _now_us()
        ready = {s for s, q in queues.items() if q[0][1] <= now}
        tried = decided = 0
        while ready:
            heads = sorted((queues[s][0][0] for s in ready), key=_parked_order)
            moved = self._try(heads, now)
            tried += len(heads)
            decided += len(moved)
            ready = set()
            for parked in moved:  # decided: its subject's next one goes at once
                queue = queues[parked.subject]
                queue.pop(0)
                if queue:
                    ready.add(parked.subject)
        if decided:
            log.info("parked events decided: %d this pass; %d stored, %d rejected so far",
                     decided, self.stored, self.rejected)
        return tried

    def _try(self, heads: list[Parked], now: int) -> list[Parked]:
        """Submit ``heads`` (one transaction); the ones decided for good."""
        inbound: list[Inbound] = [read(p.raw, list(p.headers), where=p.origin,
                                       max_bytes=self._max_bytes) for p in heads]
        results = self._ingest.submit(inbound)
        decided: list[Parked] = []
        for parked, message, result in zip(heads, inbound, results, strict=True):
            if result.status in ("accepted", "duplicate"):
                decided.append(parked)
                self.stored += 1
            elif (result.status == "rejected" and result.code == PARKABLE
                  and now < parked.first_us + self._park_us):
                self._parking.later(parked, result.reason or parked.reason)  # not there yet
            else:  # refused for good, or out of time: a dead letter like any other
                self._sink.keys[parked.origin] = parked.key
                kind: Literal["dlq", "rejected"] = (
                    "rejected" if result.status == "rejected" else "dlq")
                event = message.event
                # The plain dead-letter path, even when the sink is a ParkingSink.
                KafkaRefusalSink.record_refusals(self._sink, [Refusal(
                    kind, result.reason or parked.reason, parked.raw, parked.headers,
                    source=parked.source, event_id=parked.event_id,
                    type=event.type if event else None,
                    subject=event.subject if event else None, origin=parked.origin,
                    code=result.code)])
                decided.append(parked)
                self.rejected += 1
        self._sink.flush()  # acknowledged before the rows go
        self._parking.done(decided)
        return decided


def _parked_order(parked: Parked) -> tuple[int, str]:
    return parked.first_us, parked.event_id


def _now_us() -> int:
    return time.time_ns() // 1000


def _headers_text(headers: Sequence[tuple[str, bytes]]) -> str:
    return orjson.dumps([[k, base64.b64encode(v).decode()] for k, v in headers]).decode()


def _headers_of(text: str) -> tuple[tuple[str, bytes], ...]:
    return tuple((k, base64.b64decode(v)) for k, v in orjson.loads(text))
