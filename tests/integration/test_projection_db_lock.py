"""Several processes writing one SQLite projection store (``pmo consume`` processes of one
projection): their transactions take turns through ``<db>.writer.lock``."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import sqlite3
import threading
import time
from pathlib import Path

from projections.db import Db
from storage.urls import StoreUrl

WRITES = 300


def _url(path: Path) -> StoreUrl:
    return StoreUrl.parse(f"sqlite:///{path}")


def _writer(path: str, name: str, start: float) -> None:
    db = Db(_url(Path(path)))
    while time.time() < start:  # both begin together
        time.sleep(0.001)
    for n in range(WRITES):
        with db.transaction() as tx:
            tx.execute("INSERT INTO t (writer, n) VALUES (?, ?)", (name, n))
            tx.execute("UPDATE total SET value = value + 1")
    db.close()


def test_two_processes_write_one_store_concurrently_and_both_succeed(tmp_path: Path) -> None:
    path = tmp_path / "views.sqlite"
    db = Db(_url(path))
    with db.transaction() as tx:
        tx.execute("CREATE TABLE t (writer TEXT, n INTEGER)")
        tx.execute("CREATE TABLE total (value INTEGER)")
        tx.execute("INSERT INTO total VALUES (0)")
    ctx = multiprocessing.get_context("spawn")
    start = time.time() + 1.5
    workers = [ctx.Process(target=_writer, args=(str(path), name, start)) for name in "ab"]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0]  # no "database is locked"
    assert db.query("SELECT writer, COUNT(*) FROM t GROUP BY writer ORDER BY writer") == [
        ("a", WRITES), ("b", WRITES)]
    assert db.query("SELECT value FROM total") == [(2 * WRITES,)]
    db.close()


def test_a_writer_waits_for_the_lock_file_and_starts_as_soon_as_it_frees(tmp_path: Path,
                                                                       ) -> None:
    path = tmp_path / "views.sqlite"
    db = Db(_url(path))
    with db.transaction() as tx:
        tx.execute("CREATE TABLE t (n INTEGER)")
    done = threading.Event()

    def write() -> None:
        with db.transaction() as tx:
            tx.execute("INSERT INTO t VALUES (1)")
        done.set()

    fd = os.open(f"{path}.writer.lock", os.O_RDWR)  # as another process would
    fcntl.flock(fd, fcntl.LOCK_EX)
    thread = threading.Thread(target=write)
    thread.start()
    try:
        assert not done.wait(0.3)  # blocked behind the other holder
        assert db.query("SELECT COUNT(*) FROM t") == [(0,)]  # readers never wait
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    assert done.wait(5)
    thread.join()
    assert db.query("SELECT COUNT(*) FROM t") == [(1,)]
    db.close()


def test_a_new_file_is_opened_while_another_process_writes_it_in_rollback_mode(
        tmp_path: Path) -> None:
    """Two workers starting together on a new store: one still creates its tables in
    rollback mode (a RESERVED lock) while the other switches the file to WAL, which SQLite
    answers BUSY at once, without its busy handler. The opener waits, it does not die."""
    path = tmp_path / "views.sqlite"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE t (n INTEGER)")
    other.execute("INSERT INTO t VALUES (1)")
    released = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    released.start()
    db = Db(_url(path))
    try:
        assert db.query("PRAGMA journal_mode")[0][0] == "wal"
        assert db.query("SELECT n FROM t") == [(1,)]
    finally:
        released.join()
        db.close()
        other.close()
