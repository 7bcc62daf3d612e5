"""The log of inbound messages that were not stored: dead-lettered or rejected, with why.

Implements ``ingest.service.RefusalSink``. The original bytes are kept whole
(base64 in the JSON view), with their headers, so a message can be fixed and
re-published. ``kind`` is ``dlq`` (malformed or schema-invalid) or ``rejected``
(well-formed, refused by the PMO's rules).

Fed from Kafka (``pmo consume rejections``), the log records the consumed offsets
(``tracking``) in the same transaction as the rows, as projections do, so a
dead letter is logged exactly once across crashes and rebalances.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ingest.service import Refusal
from projections.base import TRACKING_DDL, UPSERT_TRACKING
from projections.db import Db

TRACKING = "rejections"  # its rows in pv_tracking
_FIELDS = ("id", "kind", "reason", "source", "event_id", "type", "subject", "origin",
           "received_at", "headers", "raw")


def _text(value: str | None) -> str | None:
    """``value`` as a text column can hold it: PostgreSQL's text cannot hold NUL. Ingest
    keeps NUL out of ids and reasons; this keeps a dead letter from any other source
    (an old worker, a hand-made message) from stopping the log. The bytes stay whole
    in ``raw``."""
    return value.replace("\x00", "\\x00") if value and "\x00" in value else value


class RejectionLog:
    def __init__(self, db: Db) -> None:
        self.db = db

    def create_tables(self) -> None:
        with self.db.transaction() as tx:
            pk = ("id INTEGER PRIMARY KEY AUTOINCREMENT" if self.db.kind == "sqlite"
                  else "id BIGSERIAL PRIMARY KEY")
            tx.execute(f"CREATE TABLE IF NOT EXISTS pv_rejections ({pk}, kind TEXT NOT NULL, "
                       "reason TEXT NOT NULL, source TEXT, event_id TEXT, type TEXT, "
                       "subject TEXT, origin TEXT NOT NULL, received_at TEXT NOT NULL, "
                       "headers TEXT NOT NULL, raw TEXT NOT NULL)")
            # GET /v1/receipts looks a message up by its CloudEvent key.
            tx.execute("CREATE INDEX IF NOT EXISTS pv_rejections_key ON pv_rejections "
                       "(source, event_id)")
            tx.execute(self.db.ddl(TRACKING_DDL))

    def record_refusals(self, refusals: Sequence[Refusal],
                        tracking: Mapping[str, int] | None = None) -> None:
        with self.db.transaction() as tx:
            if tracking:
                tx.executemany(UPSERT_TRACKING, [(TRACKING, k, int(v))
                                                 for k, v in tracking.items()])
            tx.executemany(
                "INSERT INTO pv_rejections (kind, reason, source, event_id, type, subject, "
                "origin, received_at, headers, raw) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(r.kind, _text(r.reason), _text(r.source), _text(r.event_id), _text(r.type),
                  _text(r.subject), _text(r.origin), r.received_at.isoformat(),
                  orjson.dumps([[k, base64.b64encode(v).decode()] for k, v in r.headers]).decode(),
                  base64.b64encode(r.raw).decode()) for r in refusals])

    def tracking(self) -> dict[str, int]:
        rows = self.db.query("SELECT key, value FROM pv_tracking WHERE projection = ?",
                             (TRACKING,))
        return {k: int(v) for k, v in rows}

    def page(self, kind: str | None, after: int, limit: int) -> tuple[list[dict[str, Any]],
                                                                      int | None]:
        where = "id > ?" + (" AND kind = ?" if kind else "")
        args: list[Any] = [after] + ([kind] if kind else [])
        rows = self.db.query(f"SELECT {', '.join(_FIELDS)} FROM pv_rejections WHERE {where} "
                             f"ORDER BY id LIMIT {int(limit) + 1}", args)
        items = []
        for row in rows[:limit]:
            d = dict(zip(_FIELDS, row, strict=True))
            d["headers"] = [{"key": k, "value_base64": v} for k, v in orjson.loads(d["headers"])]
            d["raw_base64"] = d.pop("raw")
            items.append(d)
        more = len(rows) > limit
        return items, (items[-1]["id"] if more and items else None)

    def counts(self) -> dict[str, int]:
        rows = self.db.query("SELECT kind, COUNT(*) FROM pv_rejections GROUP BY kind")
        found: dict[str, int] = {str(k): int(n) for k, n in rows}
        return {"dlq": int(found.get("dlq", 0)), "rejected": int(found.get("rejected", 0))}

    def clear(self) -> None:
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM pv_rejections")
