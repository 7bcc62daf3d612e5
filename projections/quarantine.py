"""Quarantine: one aggregate whose stored event a projection cannot apply stops only itself.

Events are immutable and replayed, so an event a fold cannot handle would fail its
batch forever and stop the view for everyone. Instead (like Axon's sequenced dead
letters, Kurrent's parked messages), the projection sets that aggregate aside:

- its view keeps its last good state (the events before the failing one are applied);
- the failing event and every later event of that aggregate are *held*: stored with
  their positions in ``pv_quarantine_held``, in order, so ``retry`` can re-apply them;
- every other aggregate's events are applied, and the projection's position advances
  (the tracking rows are written by the caller as for any batch): nothing stalls.

All of it is written in the batch's own transaction, so a restart keeps it.

What is quarantined and what is retried (``is_infrastructure``): an error of the store
itself (the driver's operational and interface errors: unreachable, locked, disk, a
missing table; SQLSTATE classes 08, 25, 28, 3D, 3F, 40, 42, 53, 55, 57, 58, XX) says
nothing about the events, so it fails the batch as before and the caller retries it
with backoff. Anything else raised while applying a batch is a property of its events:
an exception raised while folding an event names that event (``FoldError``); any other
(a value the store refuses, such as a NUL in a PostgreSQL text column or a number out of
range) is pinned down by re-applying the batch one half of its aggregates at a time,
then one event prefix of the guilty aggregate at a time. Each attempt runs inside a
SAVEPOINT, so a failed one leaves nothing behind and the happy path pays only the
savepoint (two statements a projection a batch).

Listing, retry and evict: ``projections.quarantine_ops``.

Which projections: those whose views are per aggregate (``Projection.quarantinable``,
the four ``DocProjection``s). The audit trail is never quarantined: its hash chain must
hold every stored event, in order, and it reads only the envelope.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg

from projections.db import Tx, in_list
from projections.feed import RecordedEvent, micros

if TYPE_CHECKING:
    from projections.base import Projection

log = logging.getLogger(__name__)

QUARANTINE_DDL = (
    "CREATE TABLE IF NOT EXISTS pv_quarantine (projection TEXT NOT NULL, "
    "aggregate TEXT NOT NULL, key TEXT, state TEXT NOT NULL, first_position {INT} NOT NULL, "
    "first_version {INT} NOT NULL, error_class TEXT NOT NULL, error TEXT NOT NULL, "
    "since_us {INT} NOT NULL, updated_us {INT} NOT NULL, retries {INT} NOT NULL, "
    "PRIMARY KEY (projection, aggregate))",
    "CREATE TABLE IF NOT EXISTS pv_quarantine_held (projection TEXT NOT NULL, "
    "aggregate TEXT NOT NULL, position {INT} NOT NULL, version {INT} NOT NULL, "
    "topic TEXT NOT NULL, state {BLOB} NOT NULL, prev_position {INT}, "
    "PRIMARY KEY (projection, aggregate, position))",
)
QUARANTINED = "quarantined"
# An evicted aggregate's view rows are gone; its later events are dropped, so a re-delivered
# creation cannot bring back a partial view. A rebuild (which clears these rows) starts over.
EVICTED = "evicted"
# Written in pv_tracking when an operator acts: view caches key on the tracking rows.
CHANGED = "_quarantine_changed_us"
ERROR_CHARS = 500
_SAVEPOINT = "pmo_quarantine"
_HELD_COLUMNS = ("projection", "aggregate", "position", "version", "topic", "state",
                 "prev_position")
# SQLSTATE classes of PostgreSQL that are the server's or the session's trouble, never the data's.
_INFRASTRUCTURE_SQLSTATES = frozenset({"08", "25", "28", "3D", "3F", "40", "42", "53", "55",
                                       "57", "58", "XX"})


class FoldError(Exception):
    """Folding events raised: for each failing aggregate (store id), its first failing event."""

    def __init__(self, failures: dict[str, tuple[RecordedEvent, Exception]]) -> None:
        super().__init__("; ".join(f"{agg}@{e.position}: {describe(cause)}"
                                   for agg, (e, cause) in failures.items()))
        self.failures = failures


class NotQuarantined(LookupError):
    """No such quarantined aggregate in that projection."""


def is_infrastructure(error: BaseException) -> bool:
    """True when ``error`` is the store's (retry the batch), False when it is the events'."""
    if isinstance(error, FoldError):
        return False
    if isinstance(error, (OSError, MemoryError, sqlite3.OperationalError, sqlite3.InterfaceError,
                          sqlite3.InternalError, sqlite3.NotSupportedError,
                          psycopg.OperationalError, psycopg.InterfaceError,
                          psycopg.InternalError)):
        return True
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate[:2] in _INFRASTRUCTURE_SQLSTATES:
        return True
    # sqlite3.DatabaseError itself: "file is not a database", "database disk image is malformed".
    return type(error) is sqlite3.DatabaseError


def error_class(error: BaseException) -> str:
    return type(error).__name__


def describe(error: BaseException) -> str:
    """``Class: message``, one line, printable, at most ``ERROR_CHARS`` characters."""
    text = f"{error_class(error)}: {error}"
    text = "".join(ch if ch.isprintable() else "\ufffd" for ch in text)
    return text if len(text) <= ERROR_CHARS else text[:ERROR_CHARS - 1] + "\u2026"


def storable(text: str | None) -> str | None:
    """A publisher's id as a text column of either store can hold it (PostgreSQL: no NUL)."""
    return None if text is None else text.replace("\x00", "\ufffd")


def now_us() -> int:
    return micros(datetime.now(UTC))


# -- applying a batch ---------------------------------------------------------------------


def apply_isolating(projection: Projection, tx: Tx, events: Sequence[RecordedEvent],
                    prepared: Any) -> None:
    """``projection.apply(tx, events, prepared)``, quarantining any aggregate that fails."""
    states = _states(projection, tx)
    if states:
        events = _hold_quarantined(projection, tx, events, states)
        prepared = None  # made for the whole batch
        if not events:
            return
    failure = _attempt(projection, tx, events, prepared)
    if failure is not None:
        settle(projection, tx, events, failure)


def settle(projection: Projection, tx: Tx, events: Sequence[RecordedEvent],
           failure: Exception | None = None) -> None:
    """Apply ``events``, setting aside each aggregate they cannot be applied to.

    ``failure``: what an attempt at exactly these events raised (saves one attempt).
    """
    if failure is None:
        failure = _attempt(projection, tx, events)
        if failure is None:
            return
    if isinstance(failure, FoldError):
        held: dict[str, int] = {}
        for aggregate, (first, cause) in failure.failures.items():
            _quarantine(projection, tx, aggregate, first, cause, events)
            held[aggregate] = first.position
        rest = [e for e in events if not (e.oid_hex in held and e.position >= held[e.oid_hex])]
        if rest:
            settle(projection, tx, rest)
        return
    aggregates = list(dict.fromkeys(e.oid_hex for e in events))
    if len(aggregates) > 1:
        half = set(aggregates[:len(aggregates) // 2])
        settle(projection, tx, [e for e in events if e.oid_hex in half])
        settle(projection, tx, [e for e in events if e.oid_hex not in half])
        return
    # One aggregate, and its events fold but cannot be written: find the first event
    # whose inclusion makes the write fail (bisect on prefixes: every prefix up to
    # ``good`` is known to apply, the prefix of ``bad`` events is known to fail).
    good, bad = 0, len(events)
    while bad - good > 1:
        middle = (good + bad) // 2
        probe = _attempt(projection, tx, events[:middle], keep=False)
        if probe is None:
            good = middle
        else:
            bad, failure = middle, probe
    if good and _attempt(projection, tx, events[:good]) is not None:
        good = 0  # not reproducible: hold the whole stretch rather than guess
    _quarantine(projection, tx, aggregates[0], events[good], failure, events)


def _attempt(projection: Projection, tx: Tx, events: Sequence[RecordedEvent],
             prepared: Any = None, *, keep: bool = True) -> Exception | None:
    """Apply inside a savepoint: None when it went through (kept unless ``keep`` is False),
    else the error (rolled back). An infrastructure error propagates: the batch fails."""
    tx.execute(f"SAVEPOINT {_SAVEPOINT}")
    try:
        projection.apply(tx, events, prepared)
    except Exception as error:
        try:
            tx.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
            tx.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
        except Exception:
            raise error from None  # the connection itself is gone: that is the news
        if is_infrastructure(error):
            raise
        return error
    if keep:
        tx.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
    else:
        tx.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        tx.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
    return None


def _states(projection: Projection, tx: Tx) -> dict[str, tuple[str, int]]:
    """aggregate -> (state, first position) of this projection's set-aside aggregates.

    On PostgreSQL the rows are read FOR SHARE: an operator's retry (FOR UPDATE) and a
    batch then take turns, so no held event can slip in beside a retry.
    """
    lock = " FOR SHARE" if projection.db.kind == "postgresql" else ""
    rows = tx.query("SELECT aggregate, state, first_position FROM pv_quarantine "
                    f"WHERE projection = ?{lock}", (projection.name,))
    return {str(a): (str(s), int(p)) for a, s, p in rows}


def _hold_quarantined(projection: Projection, tx: Tx, events: Sequence[RecordedEvent],
                      states: dict[str, tuple[str, int]]) -> list[RecordedEvent]:
    """The events to apply; those of quarantined aggregates are held (stored), those of
    evicted ones dropped, and re-deliveries from before the first failure ignored."""
    keep: list[RecordedEvent] = []
    held: list[RecordedEvent] = []
    for e in events:
        state = states.get(e.oid_hex)
        if state is None:
            keep.append(e)
        elif state[0] == QUARANTINED and e.position >= state[1]:
            held.append(e)
    if held:
        _insert_held(projection, tx, held)
    return keep


def _insert_held(projection: Projection, tx: Tx, events: Sequence[RecordedEvent]) -> None:
    tx.executemany(
        f"INSERT INTO pv_quarantine_held ({', '.join(_HELD_COLUMNS)}) VALUES "
        f"{in_list(len(_HELD_COLUMNS))} ON CONFLICT (projection, aggregate, position) "
        "DO NOTHING",
        [(projection.name, e.oid_hex, e.position, e.originator_version, e.topic, e.state,
          e.prev_position) for e in events])


def _quarantine(projection: Projection, tx: Tx, aggregate: str, first: RecordedEvent,
                cause: BaseException, batch: Sequence[RecordedEvent]) -> None:
    mine = [e for e in batch if e.oid_hex == aggregate]
    key = storable(projection.aggregate_key(tx, aggregate, mine))
    stamp = now_us()
    tx.execute(
        "INSERT INTO pv_quarantine (projection, aggregate, key, state, first_position, "
        "first_version, error_class, error, since_us, updated_us, retries) VALUES "
        "(?,?,?,?,?,?,?,?,?,?,0) ON CONFLICT (projection, aggregate) DO UPDATE SET "
        "key = excluded.key, state = excluded.state, first_position = excluded.first_position, "
        "first_version = excluded.first_version, error_class = excluded.error_class, "
        "error = excluded.error, updated_us = excluded.updated_us",
        (projection.name, aggregate, key, QUARANTINED, first.position, first.originator_version,
         error_class(cause), describe(cause), stamp, stamp))
    _insert_held(projection, tx, [e for e in mine if e.position >= first.position])
    log.warning("%s: aggregate %s quarantined at position %d: %s", projection.name,
                key or aggregate, first.position, describe(cause))
