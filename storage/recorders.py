"""Event store recorders that also keep inbound receipts and recording times.

Both tables are written in the transaction that inserts the events, after the
events (on PostgreSQL, after the EXCLUSIVE lock the insert takes), so:

- ``inbound_receipts`` (source, event_id) is unique: a message delivered twice
  makes the second transaction fail whole, and nothing is stored twice;
- ``event_times`` maps (aggregate, recording time) to a version, so the state
  of an aggregate as known at any instant loads without scanning its events.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from psycopg import Cursor
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Identifier

from domain.application import Key, Receipt

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(instant: datetime) -> int:
    """SQLite keeps instants as integer microseconds since the epoch: exact and ordered."""
    # Integer arithmetic on the parts: a third of the cost of ``// timedelta(microseconds=1)``.
    delta = instant - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# A stored event as the audit's verification reads it, straight from the store's rows:
# (position, originator_id as 32 hex digits, version, topic, state exactly as stored,
# ``event_times.recorded_at`` in microseconds or None when that row is missing).
# A plain tuple: a million of them are made per verification.
LoggedEvent = tuple[int, str, int, str, bytes, int | None]


def _receipt_rows(stored_events: Sequence[StoredEvent], ids: Sequence[int],
                  receipts: Sequence[Receipt]) -> list[tuple[str, str, int]]:
    if all(r.index is not None for r in receipts):
        # The application says where each receipt's event is: no key hashing per event.
        return [(r.source, r.event_id, ids[cast(int, r.index)]) for r in receipts]
    position = {(s.originator_id, s.originator_version): n
                for s, n in zip(stored_events, ids, strict=True)}
    return [(r.source, r.event_id, position[(r.originator_id, r.originator_version)])
            for r in receipts]


class PmoSQLiteRecorder(SQLiteApplicationRecorder):
    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name)

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS inbound_receipts ("
            "source TEXT NOT NULL, event_id TEXT NOT NULL, position INTEGER NOT NULL, "
            "PRIMARY KEY (source, event_id)) WITHOUT ROWID",
            "CREATE TABLE IF NOT EXISTS event_times ("
            "originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL, "
            "recorded_at INTEGER NOT NULL, position INTEGER NOT NULL, "
            # No index on recorded_at: an as-of read scans one aggregate's rows by the
            # primary key prefix, and every insert is spared a second B-tree.
            "PRIMARY KEY (originator_id, originator_version)) WITHOUT ROWID",
        ]

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent],
                       **kwargs: Any) -> Sequence[int] | None:
        # One executemany instead of the library's execute per row. Rowids of one
        # transaction are consecutive: it holds SQLite's write lock from its first
        # insert, and each new rowid is the table's largest plus one.
        if not stored_events:
            return []  # a batch whose every message was refused (MAX(rowid) may be NULL)
        rows = [(s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id,
                 s.originator_version, s.topic, s.state) for s in stored_events]
        c.executemany(self.insert_events_statement, rows)
        c.execute(f"SELECT MAX(rowid) FROM {self.events_table_name}")
        last = c.fetchone()[0]
        ids = list(range(last - len(stored_events) + 1, last + 1))
        receipts = _receipt_rows(stored_events, ids, kwargs.get("receipts", ()))
        if receipts:
            c.executemany("INSERT INTO inbound_receipts VALUES (?,?,?)", receipts)
        timestamps = kwargs.get("timestamps", ())
        if timestamps:  # the events' rows give each id as text already
            c.executemany("INSERT INTO event_times VALUES (?,?,?,?)",
                          [(row[0], row[1], _micros(t), n)
                           for row, t, n in zip(rows, timestamps, ids, strict=True)])
        return ids

    def positions_of(self, keys: Iterable[Key]) -> dict[Key, int]:
        # Grouped by source, so each lookup is an IN list on the primary key's prefix.
        by_source: dict[str, list[str]] = {}
        for source, event_id in keys:
            by_source.setdefault(source, []).append(event_id)
        found: dict[Key, int] = {}
        with self.datastore.transaction(commit=False) as c:
            for source, event_ids in by_source.items():
                for start in range(0, len(event_ids), 500):
                    chunk = event_ids[start:start + 500]
                    c.execute("SELECT event_id, position FROM inbound_receipts WHERE source=? "
                              f"AND event_id IN ({','.join('?' * len(chunk))})",
                              [source, *chunk])
                    found.update({(source, r[0]): r[1] for r in c.fetchall()})
        return found

    def existing(self, originator_ids: Iterable[UUID]) -> set[UUID]:
        ids = [i.hex for i in originator_ids]
        found: set[UUID] = set()
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                c.execute(f"SELECT originator_id FROM {self.events_table_name} WHERE "
                          f"originator_version=1 AND originator_id IN "
                          f"({','.join('?' * len(chunk))})", chunk)
                found.update(UUID(r[0]) for r in c.fetchall())
        return found

    def positions_by_version(self, originator_id: UUID) -> dict[int, int]:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT originator_version, position FROM event_times "
                      "WHERE originator_id=?", (originator_id.hex,))
            return {row[0]: row[1] for row in c.fetchall()}

    def version_at(self, originator_id: UUID, instant: datetime) -> int | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT MAX(originator_version) FROM event_times "
                      "WHERE originator_id=? AND recorded_at<=?",
                      (originator_id.hex, _micros(instant)))
            row = c.fetchone()
        return None if row is None else row[0]

    def log_with_times(self, after: int, limit: int) -> list[LoggedEvent]:
        """Events after position ``after`` in position order, each with its recording time
        as the ``event_times`` table holds it (None when the row is missing)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT s.rowid, s.originator_id, s.originator_version, s.topic, "
                      f"s.state, t.recorded_at FROM {self.events_table_name} s "
                      "LEFT JOIN event_times t ON t.originator_id = s.originator_id "
                      "AND t.originator_version = s.originator_version "
                      "WHERE s.rowid > ? ORDER BY s.rowid LIMIT ?", (after, limit))
            # Ids are written as 32 hex digits and states as BLOBs (``_insert_events``).
            rows: list[LoggedEvent] = c.fetchall()
            return rows


class PmoPostgresRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *,
                 events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(datastore.schema)
        self.receipts_table = Identifier(f"{events_table_name}_receipts")
        self.times_table = Identifier(f"{events_table_name}_times")
        self.sql_create_statements += [
            SQL("CREATE TABLE IF NOT EXISTS {}.{} (source text NOT NULL, event_id text NOT NULL,"
                " position bigint NOT NULL, PRIMARY KEY (source, event_id))"
                ).format(schema, self.receipts_table),
            SQL("CREATE TABLE IF NOT EXISTS {}.{} (originator_id uuid NOT NULL,"
                " originator_version bigint NOT NULL, recorded_at timestamptz NOT NULL,"
                " position bigint NOT NULL, PRIMARY KEY (originator_id, originator_version))"
                ).format(schema, self.times_table),
            SQL("CREATE INDEX IF NOT EXISTS {} ON {}.{} (originator_id, recorded_at)").format(
                Identifier(f"{events_table_name}_times_by_time"), schema, self.times_table),
        ]
        # One statement per table and batch, its rows as arrays: an executemany is a
        # statement per row, and psycopg's pipeline flushes and polls for each
        # (measured: most of a batch's time on PostgreSQL).
        self._insert_receipts = SQL(
            "INSERT INTO {}.{} SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[])"
        ).format(schema, self.receipts_table)
        self._insert_times = SQL(
            "INSERT INTO {}.{} SELECT * FROM "
            "unnest(%s::uuid[], %s::bigint[], %s::timestamptz[], %s::bigint[])"
        ).format(schema, self.times_table)
        # Events as four arrays sent in binary, not an array of the library's composite
        # type: psycopg (pure Python here) writes that as text, escaping every state's
        # bytes with regular expressions (measured: a quarter of a batch's time).
        self._insert_events_by_columns = SQL(
            "INSERT INTO {}.{} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%s::{}[], %s::bigint[], %s::text[], %s::bytea[]) "
            "RETURNING notification_id").format(
            schema, Identifier(events_table_name), SQL(datastore.originator_id_type))
        self._select_receipts = SQL(
            "SELECT r.source, r.event_id, r.position FROM {}.{} r "
            "JOIN unnest(%s::text[], %s::text[]) AS k(source, event_id) "
            "ON r.source = k.source AND r.event_id = k.event_id").format(
            schema, self.receipts_table)
        self._select_existing = SQL(
            "SELECT originator_id FROM {}.{} WHERE originator_version = 1 "
            "AND originator_id = ANY(%s)").format(schema, Identifier(events_table_name))
        self._select_positions = SQL(
            "SELECT originator_version, position FROM {}.{} WHERE originator_id = %s"
        ).format(schema, self.times_table)
        # The audit's verification reads every event through this: the id as 32 hex
        # digits and the time as integer microseconds are made by the server (exact:
        # extract returns numeric), rows come as tuples in binary. Pure-Python psycopg
        # spent more per row building dicts, UUIDs and datetimes than the server did.
        self._select_log_with_times = SQL(
            "SELECT s.notification_id, replace(s.originator_id::text, '-', ''), "
            "s.originator_version, s.topic, s.state, "
            "(extract(epoch FROM t.recorded_at) * 1000000)::bigint FROM {}.{} s LEFT JOIN {}.{} t "
            "ON t.originator_id = s.originator_id AND t.originator_version = "
            "s.originator_version WHERE s.notification_id > %s "
            "ORDER BY s.notification_id LIMIT %s").format(
            schema, Identifier(events_table_name), schema, self.times_table)
        self._select_version_at = SQL(
            "SELECT MAX(originator_version) AS v FROM {}.{} "
            "WHERE originator_id = %s AND recorded_at <= %s").format(schema, self.times_table)

    def _insert_stored_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent],
                              **kwargs: Any) -> None:
        # What the library's method does (lock, notify, insert returning ids, in that
        # order), with the events sent by columns.
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(self._insert_events_by_columns, (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events]), binary=True)

    def _fetch_ids_after_insert_events(self, curs: Cursor[DictRow],
                                       stored_events: Sequence[StoredEvent],
                                       **kwargs: Any) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        assert ids is not None
        receipts = _receipt_rows(stored_events, ids, kwargs.get("receipts", ()))
        timestamps = kwargs.get("timestamps", ())
        # A repeated receipt fails this statement, which aborts the whole transaction.
        if receipts:
            curs.execute(self._insert_receipts, ([r[0] for r in receipts], [r[1] for r in receipts],
                                                 [r[2] for r in receipts]))
        if timestamps:
            curs.execute(self._insert_times, (
                [s.originator_id for s in stored_events],
                [s.originator_version for s in stored_events],
                list(timestamps), list(ids)))
        return ids

    def positions_of(self, keys: Iterable[Key]) -> dict[Key, int]:
        keys = list(keys)
        if not keys:
            return {}
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select_receipts, ([k[0] for k in keys], [k[1] for k in keys]))
            return {(r["source"], r["event_id"]): r["position"] for r in curs.fetchall()}

    def existing(self, originator_ids: Iterable[UUID]) -> set[UUID]:
        ids = list(originator_ids)
        if not ids:
            return set()
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select_existing, (ids,))
            return {r["originator_id"] for r in curs.fetchall()}

    def positions_by_version(self, originator_id: UUID) -> dict[int, int]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select_positions, (originator_id,))
            return {r["originator_version"]: r["position"] for r in curs.fetchall()}

    def version_at(self, originator_id: UUID, instant: datetime) -> int | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select_version_at, (originator_id, instant))
            row = curs.fetchone()
        return None if row is None else row["v"]

    def log_with_times(self, after: int, limit: int) -> list[LoggedEvent]:
        with self.datastore.transaction(commit=False) as curs, curs.connection.cursor(
                row_factory=tuple_row, binary=True) as rows:
            rows.execute(self._select_log_with_times, (after, limit))
            return rows.fetchall()
