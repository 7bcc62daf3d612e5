"""Putting a SQLite file into WAL mode when several processes open it at once."""

from __future__ import annotations

import sqlite3
import time


def enter_wal(conn: sqlite3.Connection, timeout_s: float = 30.0) -> None:
    """Switch the connection's file to WAL, retrying while another process holds a lock.

    Why: on a file still in rollback mode (a new store that another ``pmo`` process is
    creating tables in), the switch needs an exclusive lock, and SQLite answers BUSY at
    once, without its busy handler, when another connection holds a RESERVED lock (waiting
    could deadlock). Two ``pmo consume`` processes starting together on one new file met it.
    """
    deadline = time.monotonic() + timeout_s
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.2)


def prepare_wal_file(path: str) -> None:
    """Create the file if need be and leave it in WAL mode (which persists in the file), so
    a library that opens it next only reads the mode and never races to switch it."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        enter_wal(conn)
    finally:
        conn.close()
