"""The relay's own position in the notification log, kept in the event store's database.

One row per relay name (the target topic, so two prefixes relaying one store keep
separate positions). It is written only after the broker acknowledged everything
up to it, so a crash republishes (identical messages), never skips.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder

TABLE = "pmo_relay_positions"


class RelayPositions:
    def __init__(self, recorder: Any) -> None:
        self._datastore = recorder.datastore
        if isinstance(recorder, PostgresApplicationRecorder):
            table = f'"{self._datastore.schema}".{TABLE}'
            mark = "%s"
        elif isinstance(recorder, SQLiteApplicationRecorder):
            table, mark = TABLE, "?"
        else:
            raise TypeError(f"the relay needs a SQLite or PostgreSQL event store, not {recorder}")
        self._create = (f"CREATE TABLE IF NOT EXISTS {table} "
                        "(name TEXT PRIMARY KEY, position BIGINT NOT NULL)")
        self._select = f"SELECT position FROM {table} WHERE name = {mark}"
        self._upsert = (f"INSERT INTO {table} (name, position) VALUES ({mark}, {mark}) "
                        "ON CONFLICT (name) DO UPDATE SET position = excluded.position")
        with self._datastore.transaction(commit=True) as c:
            c.execute(self._create)

    def get(self, name: str) -> int:
        with self._datastore.transaction(commit=False) as c:
            c.execute(self._select, (name,))
            row = c.fetchone()
        if row is None:
            return 0
        return int(row["position"] if isinstance(row, dict) else row[0])

    def set(self, name: str, position: int) -> None:
        with self._datastore.transaction(commit=True) as c:
            c.execute(self._upsert, (name, position))
