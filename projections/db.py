"""A thin adapter over the projection store: SQLite (default) or PostgreSQL.

One SQL dialect: statements are written with ``?`` placeholders and the few
type names below in braces (``{INT}``, ``{REAL}``, ``{BLOB}``); for PostgreSQL
``?`` becomes ``%s``. ``INSERT ... ON CONFLICT ... DO UPDATE`` works on both.

Each thread has its own connection (FastAPI runs plain ``def`` routes in a
thread pool; SQLite connections must not be shared mid-transaction). Writes go
through ``transaction()``: one transaction, committed at the end or rolled back
on error. SQLite runs in WAL mode so readers never wait for the writer, with
``synchronous=NORMAL``: a crash can lose the last transactions, never half of
one, and views and their tracking rows are always in the same transaction.

Several processes may write one SQLite store (``pmo consume`` processes of one
projection split its partitions): their transactions take turns through a lock
file beside the database (``<db>.writer.lock``), see ``_WriterLock``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

try:
    import fcntl
except ImportError:  # not on POSIX: SQLite's own busy handler is the only arbiter
    fcntl = None  # type: ignore[assignment]

from storage.sqlite_wal import enter_wal
from storage.urls import StoreUrl

Row = tuple[Any, ...]

# A connection that writes (the runner's, a consumer's) keeps more pages and checkpoints
# less often than SQLite's defaults (2 MB of cache, a checkpoint per 1000 WAL pages). A
# batch of views touches pages all over its indexes: with the defaults, a Kafka audit
# consumer spent 6.1 us an event inserting rows and 3.9 committing; with these, 4.9 and
# 2.6. Readers (one connection per API thread) keep the defaults, so memory stays low.
WRITER_CACHE_KIB = 64 * 1024
WRITER_CHECKPOINT_PAGES = 10_000  # 40 MB of WAL

_TYPES = {
    "sqlite": {"INT": "INTEGER", "REAL": "REAL", "BLOB": "BLOB", "PK_INT": "INTEGER PRIMARY KEY"},
    "postgresql": {"INT": "BIGINT", "REAL": "DOUBLE PRECISION", "BLOB": "BYTEA",
                   "PK_INT": "BIGINT PRIMARY KEY"},
}


class Tx:
    """Statements inside one transaction."""

    def __init__(self, cursor: Any, kind: str) -> None:
        self._cursor = cursor
        self._pg = kind == "postgresql"

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._pg else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor.execute(self._sql(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            self._cursor.executemany(self._sql(sql), rows)

    def insert_many(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                    ) -> None:
        """Plain appends (no conflict handling): COPY on PostgreSQL, where the driver's
        per-statement work would otherwise dominate a replay; executemany on SQLite."""
        if not rows:
            return
        if self._pg:
            with self._cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        self._cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                                 f"{in_list(len(columns))}", rows)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._cursor.execute(self._sql(sql), params)
        return [tuple(r) for r in self._cursor.fetchall()]


class _WriterLock:
    """An exclusive ``flock`` on ``<db>.writer.lock``, held from BEGIN IMMEDIATE to COMMIT.

    Why: SQLite admits one writer; a second process's BEGIN IMMEDIATE that finds the
    write lock taken is retried by the busy handler, which sleeps in growing steps
    (1, 2, 5, 10, ... up to 100 ms) whatever happens meanwhile: against transactions of
    a few milliseconds (``pmo consume`` processes of one projection each commit a batch
    that often), a waiter may sleep on long after the lock is free. A waiter blocked
    in ``flock`` is woken by the kernel the moment the holder releases, and the waiters
    queue instead of polling. SQLite still arbitrates (the busy timeout stays, for
    writers that do not take this lock, e.g. sqlite3 in a shell): the lock only decides
    who asks first. Readers never take it. The kernel drops it when its holder dies,
    so a killed process cannot leave it taken; a holder that hangs inside a
    transaction makes the others wait for it rather than fail after the busy timeout.

    The file descriptor is opened per process (a forked child reopens it): a ``flock``
    belongs to the open file description, which a fork would share with the parent.
    """

    def __init__(self, db_path: str) -> None:
        self.path = f"{db_path}.writer.lock"
        self._fd: int | None = None
        self._pid = 0

    def acquire(self) -> None:
        if fcntl is None:
            return
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._pid = os.getpid()
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        if fcntl is not None and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None


def fold(text: str) -> str:
    """Lower case one character at a time, as PostgreSQL's ``LOWER`` under a UTF-8 locale.

    The lists' ``q`` is folded by this and compared with ``LOWER(name)``. SQLite's own
    ``LOWER`` folds ASCII only, so ``q=été`` found ``Café Été`` on PostgreSQL and not on
    SQLite: the SQLite connections here replace ``LOWER`` with this. One character at a
    time, unlike ``str.lower``: a capital I with a dot is a plain ``i``, and a capital
    sigma at the end of a word is the medial small sigma, as PostgreSQL has them.

    An ASCII text is lowered whole: the same result, and SQLite calls this for every row
    a ``q`` scans (a character at a time, a 20,000-project scan took 84 ms, not 32)."""
    if text.isascii():
        return text.lower()
    return "".join(c.lower()[:1] for c in text)


def _sql_lower(value: object) -> object:
    return fold(value) if isinstance(value, str) else value


class Db:
    def __init__(self, url: StoreUrl) -> None:
        self.url = url
        self.kind = url.kind
        self._local = threading.local()
        self._write_lock = threading.Lock()  # one writer per process; SQLite allows one anyway
        self._connections: list[Any] = []
        self._guard = threading.Lock()
        self._process_lock: _WriterLock | None = None
        if self.kind == "sqlite":
            Path(url.path).parent.mkdir(parents=True, exist_ok=True)
            self._process_lock = _WriterLock(url.path)
        else:
            url.ensure_schema()

    def ddl(self, statement: str) -> str:
        return statement.format(**_TYPES[self.kind])

    def _connect(self) -> Any:
        if self.kind == "sqlite":
            conn: Any = sqlite3.connect(self.url.path, isolation_level=None,
                                        check_same_thread=False, timeout=30)
            enter_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            # SQLite's LOWER folds ASCII only; PostgreSQL's, every letter: one answer to
            # the lists' ``q`` on both stores (see ``fold``).
            conn.create_function("lower", 1, _sql_lower, deterministic=True)
        else:
            conn = psycopg.connect(self.url.psycopg_conninfo(), autocommit=True,
                                   options=f"-c search_path={self.url.schema}")
        with self._guard:
            self._connections.append(conn)
        return conn

    def connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def _writer(self, conn: Any) -> None:
        """Set a SQLite connection up for writing, once (see WRITER_CACHE_KIB)."""
        if not getattr(self._local, "writer", False):
            conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
            conn.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
            self._local.writer = True

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        conn = self.connection()
        with self._write_lock:
            if self._process_lock is not None:
                self._writer(conn)
                self._process_lock.acquire()
                try:
                    cursor = conn.cursor()
                    cursor.execute("BEGIN IMMEDIATE")
                    try:
                        yield Tx(cursor, self.kind)
                    except BaseException:
                        cursor.execute("ROLLBACK")
                        raise
                    cursor.execute("COMMIT")
                finally:
                    self._process_lock.release()
            else:
                with conn.transaction(), conn.cursor() as cursor:
                    yield Tx(cursor, self.kind)

    @contextmanager
    def writers_held(self) -> Iterator[None]:
        """SQLite: other processes' writers wait until this ends (the writer lock file),
        across several steps that are not one transaction of this store (a blue/green
        swap brings its next version up to date first; that store's own writes would
        wait on this one's transaction). ``transaction()`` may be nested. No-op on
        PostgreSQL (a transaction's row and table locks do it there)."""
        if self._process_lock is None:
            yield
            return
        self._process_lock.acquire()
        try:
            yield
        finally:
            self._process_lock.release()

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Many large write transactions from this thread (a rebuild): fewer WAL checkpoints.

        SQLite checkpoints the WAL into the database whenever a commit leaves it over a
        limit (SQLite's default, 1000 pages, when this was measured), syncing both files
        each time: a rebuild's commits spent about half their time there (0.23 s of a
        2.2 s replay). Here this connection checkpoints after 100,000 pages instead, and
        once fully at the end. Durability is unchanged (synchronous stays NORMAL: a
        commit is as safe as before, the WAL is just longer
        meanwhile); other connections keep their own setting. No-op on PostgreSQL.
        """
        if self.kind != "sqlite":
            yield
            return
        conn = self.connection()
        self._writer(conn)
        conn.execute("PRAGMA wal_autocheckpoint=100000")
        try:
            yield
        finally:
            conn.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
            # TRUNCATE: copy the WAL in and shrink its file (it waits for readers, briefly).
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        conn = self.connection()
        if self.kind == "sqlite":
            return [tuple(r) for r in conn.execute(sql, params).fetchall()]
        with conn.cursor() as cursor:
            return Tx(cursor, self.kind).query(sql, params)

    def columns(self, table: str) -> set[str]:
        """The column names of ``table`` (empty: no such table)."""
        if self.kind == "sqlite":
            return {str(r[1]) for r in self.query(f"PRAGMA table_info({table})")}
        return {str(r[0]) for r in self.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND table_name = ?", (table,))}

    def close(self) -> None:
        with self._guard:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
            if self._process_lock is not None:
                self._process_lock.close()
        self._local = threading.local()


def in_list(count: int) -> str:
    """``(?,?,...)`` for an IN clause of ``count`` values."""
    return "(" + ",".join("?" * count) + ")"


def chunks(items: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
