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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from kafka import KafkaProducer

from consumers.deadletters import KafkaRefusalSink
from consumers.inbound import read
from ingest.service import Inbound, IngestService, Refusal, Result
from pmo.settings import Settings

log = logging.getLogger(__name__)

TABLE = "pmo_parked"
PARKABLE = "unknown-aggregate"  # domain.errors.UnknownAggregate.code
FIRST_DELAY_S = 0.2
MAX_DELAY_S = 5.0  # a parent that arrives late is found at most this long after
RETRY_ROWS = 20_000  # indexed per pass, oldest first (subject, order and due time only)
RUN = 500  # a subject's parked events tried in one transaction once its head went through
MAX_BATCH = 2000  # parked events tried in one transaction
LOAD_ROWS = 500  # bodies read per query


@dataclass(frozen=True, slots=True)
class Due:
    """A parked event's place in its subject's queue and when it is due (no body)."""

    source: str
    event_id: str
    subject: str
    first_us: int
    due_us: int


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
        self._index = (f"SELECT source, event_id, subject, first_us, due_us FROM {table} "
                       f"ORDER BY first_us, event_id LIMIT {m}")
        self._load = (f"SELECT source, event_id, subject, reason, raw, headers, key, origin, "
                      f"first_us, attempts, due_us FROM {table} WHERE (source, event_id) IN ")
        self._subjects = f"SELECT DISTINCT subject FROM {table} WHERE subject IN "
        self._mark = m
        self._later = (f"UPDATE {table} SET due_us = {m}, attempts = attempts + 1, reason = {m} "
                       f"WHERE source = {m} AND event_id = {m}")
        self._behind = f"UPDATE {table} SET due_us = {m} WHERE subject = {m} AND due_us < {m}"
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
            out.append((_parked_of(values), int(values[-1])))
        return out

    def index(self, limit: int = RETRY_ROWS) -> list[Due]:
        """What a retry pass needs to choose, without the bodies, in parking order."""
        with self._datastore.transaction(commit=False) as c:
            c.execute(self._index, (limit,))
            rows = c.fetchall()
        out = []
        for row in rows:
            source, event_id, subject, first_us, due_us = (
                list(row.values()) if isinstance(row, dict) else list(row))
            out.append(Due(str(source), str(event_id), str(subject), int(first_us),
                           int(due_us)))
        return out

    def load(self, keys: Sequence[Due]) -> list[Parked]:
        """The parked events of ``keys`` (those still there), in the order of ``keys``."""
        found: dict[tuple[str, str], Parked] = {}
        for start in range(0, len(keys), LOAD_ROWS):
            chunk = keys[start:start + LOAD_ROWS]
            marks = "VALUES " + ",".join([f"({self._mark},{self._mark})"] * len(chunk))
            with self._datastore.transaction(commit=False) as c:
                c.execute(f"{self._load}({marks})",
                          [v for k in chunk for v in (k.source, k.event_id)])
                rows = c.fetchall()
            for row in rows:
                parked = _parked_of(list(row.values()) if isinstance(row, dict) else list(row))
                found[(parked.source, parked.event_id)] = parked
        return [found[(k.source, k.event_id)] for k in keys if (k.source, k.event_id) in found]

    def later(self, parked: Parked, reason: str) -> None:
        self.later_all([(parked, reason)])

    def later_all(self, waiting: Sequence[tuple[Parked, str]]) -> None:
        """Tried again after a delay that doubles with each attempt (one transaction)."""
        if not waiting:
            return
        now = _now_us()
        rows = [(now + int(min(FIRST_DELAY_S * 2 ** (p.attempts + 1), MAX_DELAY_S) * 1e6),
                 reason, p.source, p.event_id) for p, reason in waiting]
        # The events behind a head that waits are due no sooner than it: the cheap check
        # before a pass (the earliest due time) then says when a head is due.
        behind = [(due, p.subject, due) for (due, _, _, _), (p, _) in zip(rows, waiting,
                                                                           strict=True)]
        with self._datastore.transaction(commit=True) as c:
            c.executemany(self._later, rows)
            c.executemany(self._behind, behind)

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
        # The origins parked by the last batch: they have no outcome yet (the worker's
        # /metrics counts them once the Retrier decides them).
        self.just_parked: frozenset[str] = frozenset()

    def record_refusals(self, refusals: Sequence[Refusal]) -> None:
        self.just_parked = frozenset()
        rejected = [r for r in refusals if r.kind == "rejected" and r.source and r.event_id]
        behind = self.parking.waiting({r.subject or "" for r in rejected})
        waiting = []
        for r in rejected:  # in batch order: a refusal behind a parked one waits too
            if r.code == PARKABLE or (r.subject or "") in behind:
                waiting.append(r)
                behind.add(r.subject or "")
        if waiting:
            self.parking.park(waiting, self.keys)
            self.just_parked = frozenset(r.origin for r in waiting)
            before, self.parked = self.parked, self.parked + len(waiting)
            # The first, then one line a thousand: a bulk load parks in every batch.
            level = logging.INFO if before == 0 or before // 1000 < self.parked // 1000 \
                else logging.DEBUG
            log.log(level, "parked %d event(s) of %d subject(s) until what they name "
                    "exists (%d parked so far)", len(waiting),
                    len({r.subject for r in waiting}), self.parked)
        super().record_refusals([r for r in refusals if not any(r is w for w in waiting)])


class Retrier:
    """Retries the parked events that are due: each subject's in the order they came.

    A subject's head is tried alone while it waits (a parent that has not come makes
    every event behind it fail too: trying them all would cost a transaction's worth
    of work per retry for nothing). Once the head goes through, the events behind it
    are tried in runs of up to ``RUN`` in one transaction, as a poll batch of
    ``pmo ingest`` would: an event refused in the run waits again, with everything of
    its subject behind it that is refused too; one stored is done. 5,004 events parked
    behind a late portfolio take 11 transactions, not one each."""

    def __init__(self, ingest: IngestService, sink: KafkaRefusalSink, parking: Parking,
                 park_seconds: float, max_bytes: int,
                 decided: Callable[[Sequence[Inbound], Sequence[Result]], object] | None = None,
                 ) -> None:
        self._ingest = ingest  # with no refusal sink: outcomes are decided here
        self._sink = sink
        self._decided = decided  # each event decided for good, with its outcome (metrics)
        self._parking = parking
        self._park_us = int(park_seconds * 1e6)
        self._max_bytes = max_bytes
        self.stored = self.rejected = 0

    def step(self) -> int:
        """One pass: the due head of every subject's queue, then, while heads go
        through, the runs behind them. Returns how many were tried."""
        if not self._parking.anything_due():
            return 0
        queues: dict[str, list[Due]] = {}
        for due in self._parking.index():
            queues.setdefault(due.subject, []).append(due)
        now = _now_us()
        width = {s: 1 for s, q in queues.items() if q[0].due_us <= now}
        tried = decided = 0
        while width:
            keys: list[Due] = []
            taken: dict[str, int] = {}
            for subject, n in width.items():  # the rest waits for the next transaction
                if not keys or len(keys) + n <= MAX_BATCH:
                    keys += queues[subject][:n]
                    taken[subject] = n
            batch = sorted(self._parking.load(keys), key=_parked_order)
            moved = self._try(batch, now) if batch else []  # none: decided by another
            tried += len(batch)
            decided += len(moved)
            done = {(p.source, p.event_id) for p in moved}
            width = {s: n for s, n in width.items() if s not in taken}
            for subject, n in taken.items():
                queue = queues[subject]
                if all((k.source, k.event_id) in done for k in queue[:n]):
                    del queue[:n]
                    if queue:  # the whole run went through: the rest follows, in runs
                        width[subject] = RUN
        if decided:
            log.info("parked events decided: %d this pass; %d stored, %d rejected so far",
                     decided, self.stored, self.rejected)
        return tried

    def _try(self, batch: list[Parked], now: int) -> list[Parked]:
        """Submit ``batch`` (one transaction); the ones decided for good. Per subject, in
        order: after an event that waits again, the subject's refused ones wait too."""
        inbound: list[Inbound] = [read(p.raw, list(p.headers), where=p.origin,
                                       max_bytes=self._max_bytes) for p in batch]
        results = self._ingest.submit(inbound)
        decided: list[Parked] = []
        waiting: list[tuple[Parked, str]] = []
        blocked: set[str] = set()
        for parked, message, result in zip(batch, inbound, results, strict=True):
            if result.status in ("accepted", "duplicate"):
                decided.append(parked)
                self.stored += 1
            elif parked.subject in blocked:
                pass  # behind one of its subject that waits: tried again after it
            elif (result.status == "rejected" and result.code == PARKABLE
                  and now < parked.first_us + self._park_us):
                waiting.append((parked, result.reason or parked.reason))  # not there yet
                blocked.add(parked.subject)
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
        self._parking.later_all(waiting)
        self._sink.flush()  # acknowledged before the rows go
        self._parking.done(decided)
        if self._decided is not None and decided:
            done = {id(p) for p in decided}
            pairs = [(m, r) for p, m, r in zip(batch, inbound, results, strict=True)
                     if id(p) in done]
            self._decided([m for m, _ in pairs], [r for _, r in pairs])
        return decided


def _parked_order(parked: Parked) -> tuple[int, str]:
    return parked.first_us, parked.event_id


def _parked_of(values: list[Any]) -> Parked:
    """A row of ``source, event_id, subject, reason, raw, headers, key, origin, first_us,
    attempts`` (and anything after)."""
    (source, event_id, subject, reason, raw, headers, key, origin, first_us,
     attempts) = values[:10]
    return Parked(str(source), str(event_id), str(subject), str(reason), bytes(raw),
                  _headers_of(str(headers)), None if key is None else bytes(key), str(origin),
                  int(first_us), int(attempts))


def _now_us() -> int:
    return time.time_ns() // 1000


def _headers_text(headers: Sequence[tuple[str, bytes]]) -> str:
    return orjson.dumps([[k, base64.b64encode(v).decode()] for k, v in headers]).decode()


def _headers_of(text: str) -> tuple[tuple[str, bytes], ...]:
    return tuple((k, base64.b64decode(v)) for k, v in orjson.loads(text))
