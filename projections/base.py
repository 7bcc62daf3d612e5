"""What every projection shares: batch processing with its tracking, in one transaction.

``process(events, tracking)`` applies a batch of ``RecordedEvent`` and upserts
the caller's tracking rows (key -> value, e.g. ``{"store": last_position}`` for
the embedded runner, ``{"pmo.events:3": next_offset}`` for a Kafka consumer) in
ONE transaction of the projection store, so a view and the position it reflects
can never disagree. Events already applied are skipped (per aggregate: version
<= last applied version), so re-delivery never counts twice. Within one
aggregate, events must arrive in version order (the store's log and a Kafka
partition keyed by aggregate both guarantee it); across aggregates any order.
An event a ``quarantinable`` projection cannot apply sets its aggregate aside
inside the same transaction, and the rest of the batch goes in
(``projections.quarantine``); only the store's own errors fail the batch.
The position reported is a watermark (``projections.watermark``): every stored
event at or below it is applied, whatever order the batches came in.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from itertools import compress
from operator import attrgetter
from typing import Any, ClassVar

from projections import quarantine
from projections.db import Db, Tx
from projections.feed import RecordedEvent
from projections.watermark import CLEAR as CLEAR_HELD
from projections.watermark import HELD_DDL, Held

TRACKING_DDL = ("CREATE TABLE IF NOT EXISTS pv_tracking (projection TEXT NOT NULL, "
                "key TEXT NOT NULL, value {INT} NOT NULL, PRIMARY KEY (projection, key))")
UPSERT_TRACKING = ("INSERT INTO pv_tracking (projection, key, value) VALUES (?,?,?) "
                   "ON CONFLICT (projection, key) DO UPDATE SET value = excluded.value")
# Tracking keys the service keeps for itself (never a caller's key).
LAST_EVENT_AT = "_last_event_us"
# The watermark: every stored event at or below it is applied (projections.watermark).
POSITION = "_position"
MAX_TRACKING = ("INSERT INTO pv_tracking (projection, key, value) VALUES (?,?,?) "
                "ON CONFLICT (projection, key) DO UPDATE SET value = CASE WHEN "
                "excluded.value > pv_tracking.value THEN excluded.value ELSE pv_tracking.value END")
REBUILDING = "_rebuilding"
_TOPIC = attrgetter("topic")


class Projection(ABC):
    name: ClassVar[str]
    topics: ClassVar[tuple[str, ...]]  # topic prefixes this projection reads
    tables: ClassVar[tuple[str, ...]]
    # Secondary indexes a rebuild drops and builds again at the end: one sorted bulk build
    # is much cheaper than maintaining them row by row (about 1 us an event for the audit).
    deferred_indexes: ClassVar[tuple[str, ...]] = ()
    # True: an aggregate whose events this projection cannot apply is set aside, the
    # others go on (see projections.quarantine). Needs views kept per aggregate, each
    # applied independently of the others, and ``evict_rows``.
    quarantinable: ClassVar[bool] = False

    def __init__(self, db: Db, on_change: Callable[[], None] | None = None) -> None:
        self.db = db
        self._on_change = on_change
        self._held = Held()  # this writer's copy of the events applied ahead of the watermark

    @abstractmethod
    def ddl(self) -> list[str]:
        """CREATE statements of this projection's tables (idempotent)."""

    def prepare(self, events: Sequence[RecordedEvent]) -> Any:
        """Work on the batch that needs no transaction (default: none), handed to ``apply``.

        ``process`` runs it before taking the store's write lock: processes of one
        projection (``pmo consume`` scaled out) then overlap it instead of queueing.
        """
        return None

    @abstractmethod
    def apply(self, tx: Tx, events: Sequence[RecordedEvent], prepared: Any = None) -> None:
        """Apply the batch (only the topics of this projection) inside ``tx``; ``prepared``
        is what ``prepare`` made of these events, or None (then ``apply`` does it all)."""

    def create_tables(self) -> None:
        with self.db.transaction() as tx:
            for statement in [TRACKING_DDL, HELD_DDL, *self.ddl()]:
                tx.execute(self.db.ddl(statement))
            if self.quarantinable:
                for statement in quarantine.QUARANTINE_DDL:
                    tx.execute(self.db.ddl(statement))

    def process(self, events: Sequence[RecordedEvent], tracking: Mapping[str, int]) -> None:
        mine = self.mine(events)
        prepared = self.prepare(mine) if mine else None
        with self.db.transaction() as tx:
            self._apply_tracked(tx, events, mine, tracking, prepared)
        self.changed()

    def process_in(self, tx: Tx, events: Sequence[RecordedEvent],
                   tracking: Mapping[str, int]) -> None:
        """``process`` inside a transaction the caller holds (several projections in one)."""
        self._apply_tracked(tx, events, self.mine(events), tracking, None)

    def _apply_tracked(self, tx: Tx, events: Sequence[RecordedEvent],
                       mine: Sequence[RecordedEvent], tracking: Mapping[str, int],
                       prepared: Any) -> None:
        if mine:
            self._apply_guarded(tx, mine, prepared)
        tx.executemany(UPSERT_TRACKING, [(self.name, k, int(v)) for k, v in tracking.items()])
        if events:
            tx.execute(UPSERT_TRACKING, (self.name, POSITION,
                                         self._held.advance_in(tx, self.name, POSITION,
                                                                    events)))
            tx.execute(MAX_TRACKING, (self.name, LAST_EVENT_AT,
                                      max(e.recorded_us for e in events[-50:])))

    def _apply_guarded(self, tx: Tx, mine: Sequence[RecordedEvent], prepared: Any) -> None:
        """``apply``; where it fails on an aggregate's events, that aggregate is quarantined
        and the others applied (``quarantinable`` projections), else the batch fails."""
        if self.quarantinable:
            quarantine.apply_isolating(self, tx, mine, prepared)
        else:
            self.apply(tx, mine, prepared)

    def aggregate_key(self, tx: Tx, aggregate: str,
                      events: Sequence[RecordedEvent]) -> str | None:
        """The publisher's id of store id ``aggregate`` (None: unknown), from its creation
        among ``events`` (its events of the batch), read defensively: they failed."""
        for e in events:
            if e.originator_version == 1:
                try:
                    key = e.payload.get("key")
                except Exception:
                    return None
                return key if isinstance(key, str) else None
        return None

    def evict_rows(self, tx: Tx, aggregate: str) -> int:
        """Delete every view row of store id ``aggregate``; the number of rows deleted."""
        raise NotImplementedError(f"{self.name} cannot evict an aggregate")

    def mine(self, events: Sequence[RecordedEvent]) -> Sequence[RecordedEvent]:
        """The events of this projection's topics, in their order.

        Decided once per distinct topic of the batch (a few dozen), not per event: the
        runner hands every projection the whole batch, and the per-event loops run in C.
        """
        topics = set(map(_TOPIC, events))
        accepted = {t for t in topics if t.startswith(self.topics)}
        if len(accepted) == len(topics):
            return events
        if not accepted:
            return []
        return list(compress(events, map(accepted.__contains__, map(_TOPIC, events))))

    def changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def tracking(self) -> dict[str, int]:
        rows = self.db.query("SELECT key, value FROM pv_tracking WHERE projection = ?",
                             (self.name,))
        return {k: int(v) for k, v in rows}

    def set_tracking(self, values: Mapping[str, int]) -> None:
        with self.db.transaction() as tx:
            tx.executemany(UPSERT_TRACKING, [(self.name, k, v) for k, v in values.items()])

    def clear(self, *, rebuilding: bool = False) -> None:
        """Empty the view and forget every position: the next events rebuild it from scratch."""
        with self.db.transaction() as tx:
            for table in self.tables:
                tx.execute(f"DELETE FROM {table}")
            tx.execute("DELETE FROM pv_tracking WHERE projection = ?", (self.name,))
            if self.quarantinable:  # a rebuild meets every stored event again
                for table in ("pv_quarantine", "pv_quarantine_held"):
                    tx.execute(f"DELETE FROM {table} WHERE projection = ?", (self.name,))
            tx.execute(CLEAR_HELD, (self.name,))
            if rebuilding:
                tx.execute(UPSERT_TRACKING, (self.name, REBUILDING, 1))
                for index in self.deferred_indexes:
                    tx.execute(f"DROP INDEX IF EXISTS {index}")
        self._held.reset()
        if self._on_change is not None:
            self._on_change()

    def finish_rebuild(self) -> None:
        """Rebuild's end: the deferred indexes come back, the state turns live."""
        self.create_tables()
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM pv_tracking WHERE projection = ? AND key = ?",
                       (self.name, REBUILDING))
        if self._on_change is not None:
            self._on_change()
