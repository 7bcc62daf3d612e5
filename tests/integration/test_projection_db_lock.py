"""Several processes writing one SQLite projection store (``pmo consume`` processes of one
projection): their transactions take turns through ``<db>.writer.lock``."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
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
