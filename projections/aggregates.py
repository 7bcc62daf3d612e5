"""Projections that keep one JSON doc per aggregate, folded by ``projections.folds``.

Each batch loads the docs of the aggregates it touches (one query), folds the
new events in memory and writes each changed doc once (one ``executemany``),
so a replay costs a few statements per batch, not per event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import orjson

from domain.manager import Manager
from domain.portfolio import Portfolio
from domain.program import Program
from projections.base import Projection
from projections.db import Tx, chunks, in_list
from projections.documents import ManagerDoc, PortfolioDoc, ProgramDoc, Versioned
from projections.feed import RecordedEvent
from projections.folds import (
    BUDGET_BOOKKEEPING,
    fold_manager,
    fold_portfolio,
    fold_program,
)
from projections.quarantine import FoldError
from projections.validtime import advance, drop_without_valid_time

D = TypeVar("D", bound=Versioned)


class DocProjection(Projection, Generic[D]):
    """A view of one ``D`` doc per aggregate (``projections.documents``)."""

    quarantinable = True  # one doc per aggregate: each aggregate's view stands alone
    table: ClassVar[str]
    # Columns besides id/key/version/doc, each filled from the doc key of the same name.
    columns: ClassVar[tuple[str, ...]] = ()

    @staticmethod
    def fold(doc: D | None, e: RecordedEvent) -> D | None:
        raise NotImplementedError

    def ddl(self) -> list[str]:
        extra = "".join(f", {c} TEXT" for c in self.columns)
        return [f"CREATE TABLE IF NOT EXISTS {self.table} (id TEXT PRIMARY KEY, "
                f"key TEXT NOT NULL, version {{INT}} NOT NULL, doc TEXT NOT NULL{extra})",
                f"CREATE INDEX IF NOT EXISTS {self.table}_key ON {self.table} (key)"]

    def load(self, tx: Tx, ids: Sequence[str]) -> dict[str, D]:
        docs: dict[str, D] = {}
        for part in chunks(ids):
            for id_, doc in tx.query(f"SELECT id, doc FROM {self.table} WHERE id IN "
                                     f"{in_list(len(part))}", part):
                docs[id_] = orjson.loads(doc)
        return docs

    def apply(self, tx: Tx, events: Sequence[RecordedEvent], prepared: Any = None) -> None:
        ids = list({e.oid_hex: None for e in events})
        docs = self.load(tx, ids)
        changed: dict[str, D] = {}
        fold = self.fold
        # An aggregate whose event does not fold is left out of the rest of the pass (its
        # doc may be half-changed); the others go on, so one pass finds every such
        # aggregate of the batch, and the caller re-applies the batch without them.
        failed: dict[str, tuple[RecordedEvent, Exception]] = {}
        for e in events:
            id_ = e.oid_hex
            if failed and id_ in failed:
                continue
            doc = docs.get(id_)
            if doc is not None and e.originator_version <= doc["version"]:
                continue  # applied before: a re-delivery or an overlapping batch
            try:
                new = fold(doc, e)
                if new is None:
                    continue
                docs[id_] = changed[id_] = new
                self.applied(e, new)
            except MemoryError:
                raise
            except Exception as error:  # the event's, not the store's: nothing written yet
                failed[id_] = (e, error)
        if failed:
            raise FoldError(failed)
        self.write(tx, changed)

    def applied(self, e: RecordedEvent, doc: D) -> None:
        """Called after each applied event (subclasses keep extra rows)."""

    def write(self, tx: Tx, changed: dict[str, D]) -> None:
        names = ("id", "key", "version", "doc", *self.columns)
        updates = ", ".join(f"{n} = excluded.{n}" for n in names[1:])
        tx.executemany(
            f"INSERT INTO {self.table} ({', '.join(names)}) VALUES {in_list(len(names))} "
            f"ON CONFLICT (id) DO UPDATE SET {updates}",
            [self.row(id_, doc) for id_, doc in changed.items()])

    def row(self, id_: str, doc: D) -> tuple[Any, ...]:
        fields: Mapping[str, Any] = doc  # the columns are named by each subclass
        return (id_, fields[self.key_field], doc["version"], orjson.dumps(doc).decode(),
                *(fields.get(c) for c in self.columns))

    key_field: ClassVar[str]

    def aggregate_key(self, tx: Tx, aggregate: str,
                      events: Sequence[RecordedEvent]) -> str | None:
        rows = tx.query(f"SELECT key FROM {self.table} WHERE id = ?", (aggregate,))
        return str(rows[0][0]) if rows else super().aggregate_key(tx, aggregate, events)

    def evict_rows(self, tx: Tx, aggregate: str) -> int:
        removed = 0
        for table in self.tables:  # every table of a doc projection is keyed by ``id``
            removed += len(tx.query(f"SELECT 1 FROM {table} WHERE id = ?", (aggregate,)))
            tx.execute(f"DELETE FROM {table} WHERE id = ?", (aggregate,))
        return removed

    def get(self, key: str) -> D | None:
        rows = self.db.query(f"SELECT doc FROM {self.table} WHERE key = ?", (key,))
        return orjson.loads(rows[0][0]) if rows else None

    def all(self, after: str | None, limit: int, where: str = "",
            params: Sequence[Any] = ()) -> list[D]:
        clause = [f"({where})"] if where else []
        args = list(params)
        if after is not None:
            clause.append("key > ?")
            args.append(after)
        sql = f"SELECT doc FROM {self.table}"
        if clause:
            sql += " WHERE " + " AND ".join(clause)
        rows = self.db.query(sql + f" ORDER BY key LIMIT {int(limit)}", args)
        return [orjson.loads(r[0]) for r in rows]


class PortfolioProjection(DocProjection[PortfolioDoc]):
    """Portfolios: name, PMO type, currency, envelope, objectives (roll-ups come from projects).

    Most of a portfolio's events are the envelope's bookkeeping (one per approval),
    which change nothing in the view but its version. ``pv_portfolio_history``
    keeps the doc after every other event, so the doc as of T is one indexed row
    (with the version it had at T) instead of a fold over thousands of events.
    ``pv_portfolio_times`` keeps every event's valid time (``projections.validtime``),
    so the version at a valid time is one indexed query too.
    """

    name = "portfolios"
    topics = (f"{Portfolio.TOPIC}.",)
    table = "pv_portfolios"
    tables = (table, "pv_portfolio_history", "pv_portfolio_times")
    key_field = "portfolio_id"
    fold = staticmethod(fold_portfolio)

    def ddl(self) -> list[str]:
        return [*super().ddl(),
                "CREATE TABLE IF NOT EXISTS pv_portfolio_history (id TEXT NOT NULL, "
                "version {INT} NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (id, version))",
                "CREATE TABLE IF NOT EXISTS pv_portfolio_times (id TEXT NOT NULL, "
                "version {INT} NOT NULL, valid_us {INT} NOT NULL, PRIMARY KEY (id, version))"]

    def create_tables(self) -> None:
        drop_without_valid_time(self, "pv_portfolio_times", None)
        super().create_tables()

    def apply(self, tx: Tx, events: Sequence[RecordedEvent], prepared: Any = None) -> None:
        self._history: list[tuple[str, int, str]] = []
        self._times: list[tuple[str, int, int]] = []
        super().apply(tx, events)
        tx.executemany("INSERT INTO pv_portfolio_history (id, version, doc) VALUES (?,?,?) "
                       "ON CONFLICT (id, version) DO NOTHING", self._history)
        tx.executemany("INSERT INTO pv_portfolio_times (id, version, valid_us) VALUES (?,?,?) "
                       "ON CONFLICT (id, version) DO NOTHING", self._times)

    def applied(self, e: RecordedEvent, doc: PortfolioDoc) -> None:
        self._times.append((doc["id"], e.originator_version, advance(doc, e)))
        if e.topic not in BUDGET_BOOKKEEPING:
            self._history.append((doc["id"], e.originator_version, orjson.dumps(doc).decode()))

    def doc_at_version(self, id_: str, version: int) -> PortfolioDoc | None:
        """The doc as the fold had it at ``version``."""
        rows = self.db.query("SELECT doc FROM pv_portfolio_history WHERE id = ? AND version <= ? "
                             "ORDER BY version DESC LIMIT 1", (id_, version))
        if not rows:
            return None
        doc: PortfolioDoc = orjson.loads(rows[0][0])
        doc["version"] = version  # what folding the bookkeeping events in between would do
        return doc

    def valid_bounds(self, id_: str, top: int,
                     valid_us: int) -> tuple[tuple[int, int] | None, int | None]:
        """Up to version ``top``: the highest version valid at or before ``valid_us`` with
        its valid time, and the lowest valid after it (None: no such row, yet)."""
        below = self.db.query(
            "SELECT version, valid_us FROM pv_portfolio_times WHERE id = ? AND version <= ? "
            "AND valid_us <= ? ORDER BY version DESC LIMIT 1", (id_, top, valid_us))
        above = self.db.query(
            "SELECT MIN(version) FROM pv_portfolio_times WHERE id = ? AND version <= ? "
            "AND valid_us > ?", (id_, top, valid_us))
        known = (int(below[0][0]), int(below[0][1])) if below else None
        upper = above[0][0] if above and above[0][0] is not None else None
        return known, None if upper is None else int(upper)


class ProgramProjection(DocProjection[ProgramDoc]):
    """Programs: name, portfolio and manager (the roll-up comes from its projects)."""

    name = "programs"
    topics = (f"{Program.TOPIC}.",)
    table = "pv_programs"
    tables = (table,)
    key_field = "program_id"
    columns = ("portfolio_id",)
    fold = staticmethod(fold_program)


class ManagerProjection(DocProjection[ManagerDoc]):
    """The manager pool: capacity, pool membership, projects held."""

    name = "managers"
    topics = (f"{Manager.TOPIC}.",)
    table = "pv_managers"
    tables = (table,)
    key_field = "manager_id"
    fold = staticmethod(fold_manager)
