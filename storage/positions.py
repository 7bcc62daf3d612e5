"""Where each stored event of one aggregate sits in the global order (for its history).

Reads the ``event_times`` index that ``storage.recorders`` writes with every event
(version -> position), so a project's history needs no scan of the notification log.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.sql import SQL, Identifier

from storage.recorders import PmoPostgresRecorder, PmoSQLiteRecorder


def positions_by_version(recorder: Any, originator_id: UUID) -> dict[int, int]:
    if isinstance(recorder, PmoSQLiteRecorder):
        with recorder.datastore.transaction(commit=False) as c:
            c.execute("SELECT originator_version, position FROM event_times "
                      "WHERE originator_id=?", (originator_id.hex,))
            return {row[0]: row[1] for row in c.fetchall()}
    if isinstance(recorder, PmoPostgresRecorder):
        query = SQL("SELECT originator_version, position FROM {}.{} WHERE originator_id = %s"
                    ).format(Identifier(recorder.datastore.schema), recorder.times_table)
        with recorder.datastore.transaction(commit=False) as curs:
            curs.execute(query, (originator_id,))
            return {r["originator_version"]: r["position"] for r in curs.fetchall()}
    raise TypeError(f"{type(recorder).__name__} keeps no event positions index")
