"""Blue/green rebuilds: the next version of a view is built beside the live one, then swapped in.

A rebuild never clears a live view. ``NextVersion`` builds the new version of one
projection in a store of its own, beside the live one: on SQLite a file next to
the projection store (``<file>.<tag>``), on PostgreSQL a schema next to its schema
(``<schema>__<tag>``). It holds the same tables (the projection's own ``ddl()``),
its own ``pv_tracking`` and quarantine rows, and is fed by an instance of the same
projection class, so every statement of the projection runs unchanged there.
Nothing reads it: the view caches key on the live store only.

Once it has applied the store's log up to the live version's position, ``swap``
replaces the live version in ONE transaction of the live store:

- PostgreSQL: the live tables are dropped and the new ones moved in
  (``ALTER TABLE .. SET SCHEMA``: no copy, their indexes move with them);
- SQLite (tables cannot move between files): the live tables are dropped, created
  again from ``ddl()`` and filled from the attached file, then their deferred
  indexes are built (readers in WAL mode keep seeing the old version until COMMIT);
- every row that other tables keep under the projection's name (a table with a
  ``projection`` column: ``pv_tracking``, the quarantine tables, any added later)
  is replaced by the next version's: positions and quarantine follow the swap.

Meanwhile the live tracking holds ``_rebuilding`` (``GET /v1/projections`` shows
``state: "rebuilding"``) and ``_rebuild_position`` (how far the next version has
come, written at most every ``PROGRESS_EVERY_S``). A process killed mid-rebuild
leaves the live view as it was and the next version resumable (its view and
tracking rows commit together, like any projection's).
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import replace
from typing import Any

import psycopg

from domain.application import PmoApplication
from projections.base import REBUILDING, UPSERT_TRACKING, Projection
from projections.db import Db, Tx
from projections.log import read_log
from storage.urls import StoreUrl

STORE = "store"  # the embedded runner's tracking key (projections.runner.STORE)
PROGRESS = "_rebuild_position"
PROGRESS_EVERY_S = 1.0
_SQLITE_SUFFIXES = ("", "-wal", "-shm", ".writer.lock")


def next_url(url: StoreUrl, tag: str) -> StoreUrl:
    """Where the next version tagged ``tag`` lives, beside the live store ``url``."""
    safe = re.sub(r"[^a-z0-9_]", "_", tag.lower())
    if url.kind == "sqlite":
        return replace(url, path=f"{url.path}.{safe}")
    return replace(url, schema=f"{url.schema}__{safe}"[:63])  # PostgreSQL's name limit


@contextmanager
def building(url: StoreUrl, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Held by the one process that builds the next version at ``url``, across processes.

    Two ``pmo replay`` runs share their next versions' stores (the same tag): without
    this, both wrote into one PostgreSQL schema at once and one died of the other's rows
    (a duplicate key, a table dropped by its swap). The second waits (``on_wait`` says
    so first), then builds afresh once the first has swapped its version in. SQLite:
    an flock on ``<next file>.lock``; PostgreSQL: a session advisory lock, released
    when its connection closes, also if the process dies."""
    if url.kind == "sqlite":
        fd = os.open(f"{url.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait()
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
        return
    name = f"pmo-ledger rebuild {url.host}:{url.port}/{url.dbname}/{url.schema}"
    with psycopg.connect(url.psycopg_conninfo(), autocommit=True) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))",
                           (name,)).fetchone()
        if not (row and row[0]):
            if on_wait is not None:
                on_wait()
            conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (name,))
        yield


class NextVersion:
    """The next version of projection ``live``, built in its own store (see module doc)."""

    def __init__(self, live: Projection, tag: str) -> None:
        self.live = live
        self.name = live.name
        self.url = next_url(live.db.url, tag)
        self.db: Db | None = None
        self._projection: Projection | None = None
        self._reported = 0.0
        # The position reached, kept in memory: other threads read it (status) without
        # touching this store, which a swap closes under them.
        self.reached = 0

    @property
    def projection(self) -> Projection:
        assert self._projection is not None, "open() first"
        return self._projection

    def open(self, *, resume: bool = True) -> None:
        """Open the next version: resume a killed rebuild's (``resume``) or start afresh.
        The live version is flagged ``rebuilding``."""
        if not resume:
            self.discard()
        self.db = Db(self.url)
        # The same class as the live one (no on_change: no cache follows this store).
        self._projection = type(self.live)(self.db)
        self.projection.create_tables()
        if not self.projection.tracking():
            self.projection.clear(rebuilding=True)  # drops the deferred indexes
        self.reached = self.position()
        with self.live.db.transaction() as tx:
            tx.executemany(UPSERT_TRACKING, [(self.name, REBUILDING, 1),
                                             (self.name, PROGRESS, self.reached)])
        self.live.changed()

    def position(self) -> int:
        return self.projection.tracking().get(STORE, 0)

    def advance(self, app: PmoApplication, cap: int, limit: int) -> int:
        """Apply the next batch of the store's log, at most up to position ``cap``; the
        number of events applied. Once everything up to ``cap`` is in, ``position()`` is
        ``cap`` (positions may have gaps)."""
        position = self.position()
        if position >= cap:
            return 0
        read = read_log(app, position, limit)
        events = [e for e in read if e.position <= cap]
        reached = events[-1].position if events else position
        if len(events) < len(read) or len(read) < limit:
            reached = cap
        self.projection.process(events, {STORE: reached})
        self.report(reached)
        return len(events)

    def report(self, position: int, *, force: bool = False) -> None:
        """Show the progress in the live tracking (``GET /v1/projections``), throttled."""
        self.reached = position
        now = time.monotonic()
        if force or now - self._reported >= PROGRESS_EVERY_S:
            self._reported = now
            with self.live.db.transaction() as tx:
                tx.execute(UPSERT_TRACKING, (self.name, PROGRESS, position))

    def discard(self) -> None:
        """Drop the next version's store (after a swap, or to start afresh)."""
        if self.db is not None:
            self.db.close()
            self.db = None
        if self.url.kind == "sqlite":
            for suffix in _SQLITE_SUFFIXES:
                with suppress(FileNotFoundError):
                    os.remove(self.url.path + suffix)
            return
        with self.live.db.transaction() as tx:
            tx.execute(f'DROP SCHEMA IF EXISTS "{self.url.schema}" CASCADE')


# Brings a next version up to the live one's tracking rows (read inside the swap's
# transaction, locked): the live one may have moved meanwhile (another process's batch).
CatchUp = Callable[["NextVersion", dict[str, int]], None]


def store_catch_up(app: PmoApplication, batch: int = 1000) -> CatchUp:
    """The embedded way: apply the store's log up to the live one's ``store`` position."""
    def catch_up(v: NextVersion, live: dict[str, int]) -> None:
        while v.position() < live.get(STORE, 0):
            v.advance(app, live.get(STORE, 0), batch)
    return catch_up


class Superseded(Exception):
    """The live version is no longer flagged ``rebuilding``: another rebuild of it (another
    process's) was swapped in first. This one is dropped rather than swapped over it."""


def swap(versions: Sequence[NextVersion], catch_up: CatchUp) -> bool:
    """Replace each live projection by its next version, all in ONE transaction of the live
    store, after ``catch_up``; then drop the next versions' stores. False (and nothing
    swapped, the next versions dropped) when one of them was superseded."""
    if not versions:
        return True
    live_db = versions[0].live.db
    pg = live_db.kind == "postgresql"
    if pg:  # built here, before the swap holds its locks (SQLite: built after the copy)
        for v in versions:
            v.projection.finish_rebuild()
    try:
        with live_db.writers_held():
            if not pg:  # before ATTACH: the swap's transaction locks attached files too
                for v in versions:
                    catch_up(v, _flagged(_live_tracking(live_db.query, v.name, "")))
            with _attached(live_db, versions), live_db.transaction() as tx:
                if pg:  # the tables first, then the tracking rows: the order a batch takes
                    tables = [t for v in versions for t in v.live.tables]
                    tx.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")
                for i, v in enumerate(versions):
                    if pg:
                        catch_up(v, _flagged(_live_tracking(tx.query, v.name, " FOR UPDATE")))
                        _move_tables(tx, v)
                    else:
                        _copy_tables(tx, v, f"next{i}")
                    _carry_rows(tx, v, f"next{i}")
                    if pg:  # in the same transaction: no schema left without its tables
                        tx.execute(f'DROP SCHEMA "{v.url.schema}" CASCADE')
    except Superseded:
        for v in versions:
            v.discard()
        return False
    for v in versions:
        v.discard()
        v.live.changed()
    return True


def _flagged(tracking: dict[str, int]) -> dict[str, int]:
    if not tracking.get(REBUILDING):
        raise Superseded
    return tracking


def _live_tracking(query: Callable[..., list[Any]], name: str, lock: str) -> dict[str, int]:
    rows = query(f"SELECT key, value FROM pv_tracking WHERE projection = ?{lock}", (name,))
    return {str(k): int(value) for k, value in rows}


@contextmanager
def _attached(live_db: Db, versions: Sequence[NextVersion]) -> Iterator[None]:
    """SQLite: each next version's file ATTACHed to the live writer connection as next<i>."""
    if live_db.kind != "sqlite":
        yield
        return
    conn = live_db.connection()
    with ExitStack() as stack:
        for i, v in enumerate(versions):
            conn.execute("ATTACH DATABASE ? AS ?", (v.url.path, f"next{i}"))
            stack.callback(conn.execute, f"DETACH DATABASE next{i}")
        yield


def _move_tables(tx: Tx, v: NextVersion) -> None:
    live_schema = v.live.db.url.schema
    for table in v.live.tables:
        tx.execute(f'DROP TABLE IF EXISTS "{live_schema}".{table} CASCADE')
        tx.execute(f'ALTER TABLE "{v.url.schema}".{table} SET SCHEMA "{live_schema}"')


def _copy_tables(tx: Tx, v: NextVersion, alias: str) -> None:
    live = v.live
    for table in live.tables:
        tx.execute(f"DROP TABLE IF EXISTS main.{table}")
    for statement in live.ddl():  # unqualified CREATE goes to main
        tx.execute(live.db.ddl(statement))
    for index in live.deferred_indexes:  # one sorted build after the copy, not row by row
        tx.execute(f"DROP INDEX IF EXISTS main.{index}")
    for table in live.tables:
        columns = ", ".join(_columns(tx, alias, table))
        tx.execute(f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM {alias}.{table}")
    for statement in live.ddl():
        tx.execute(live.db.ddl(statement))


def _columns(tx: Tx, alias: str, table: str) -> list[str]:
    return [str(r[1]) for r in tx.query(f"PRAGMA {alias}.table_info({table})")]


def _carry_rows(tx: Tx, v: NextVersion, alias: str) -> None:
    """The next version's rows of every table keyed by projection name replace the live ones
    (tracking, quarantine, and whatever such table is added later)."""
    pg = v.live.db.kind == "postgresql"
    source = f'"{v.url.schema}"' if pg else alias
    target = f'"{v.live.db.url.schema}"' if pg else "main"
    for table in _keyed_tables(tx, pg, v.url.schema if pg else alias):
        columns = ", ".join(_table_columns(tx, pg, v.url.schema if pg else alias, table))
        skip = " AND key NOT IN (?, ?)" if table == "pv_tracking" else ""
        params: tuple[str, ...] = (v.name, REBUILDING, PROGRESS) if skip else (v.name,)
        tx.execute(f"DELETE FROM {target}.{table} WHERE projection = ?", (v.name,))
        tx.execute(f"INSERT INTO {target}.{table} ({columns}) SELECT {columns} FROM "
                   f"{source}.{table} WHERE projection = ?{skip}", params)


def _keyed_tables(tx: Tx, pg: bool, where: str) -> list[str]:
    if pg:
        rows = tx.query("SELECT table_name FROM information_schema.columns WHERE "
                        "table_schema = ? AND column_name = 'projection'", (where,))
        return sorted(str(r[0]) for r in rows)
    names = [str(r[0]) for r in tx.query(
        f"SELECT name FROM {where}.sqlite_master WHERE type = 'table'")]
    return sorted(n for n in names if "projection" in _columns(tx, where, n))


def _table_columns(tx: Tx, pg: bool, where: str, table: str) -> list[str]:
    if pg:
        rows = tx.query("SELECT column_name FROM information_schema.columns WHERE "
                        "table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                        (where, table))
        return [str(r[0]) for r in rows]
    return _columns(tx, where, table)


def build(app: PmoApplication, versions: Sequence[NextVersion], batch: int,
          progress: Callable[[int], None] | None = None) -> int:
    """Feed the next versions the store's log up to its head, each batch read once for all;
    the lowest position reached."""
    while True:
        start = min(v.position() for v in versions)
        events = read_log(app, start, batch)
        for v in versions:
            position = v.position()
            mine = events if position <= start else [e for e in events if e.position > position]
            if mine:
                v.projection.process(mine, {STORE: mine[-1].position})
                v.report(mine[-1].position)
        reached = min(v.position() for v in versions)
        if progress is not None:
            progress(reached)
        if len(events) < batch:
            return reached
