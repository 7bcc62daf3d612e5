"""Which errors quarantine and which retry, told apart on errors the real drivers raise."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import psycopg
import pytest

from projections.feed import RecordedEvent
from projections.quarantine import FoldError, describe, is_infrastructure
from storage.urls import StoreUrl
from tests.conftest import POSTGRES_URL


def raised(action: object) -> Exception:
    try:
        action()  # type: ignore[operator]
    except Exception as e:
        return e
    raise AssertionError("nothing raised")


def test_a_locked_or_broken_sqlite_store_is_infrastructure(tmp_path: Path) -> None:
    path = tmp_path / "views.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (v TEXT UNIQUE)")
    holder.execute("BEGIN IMMEDIATE")
    waiter = sqlite3.connect(path, isolation_level=None, timeout=0)
    locked = raised(lambda: waiter.execute("BEGIN IMMEDIATE"))
    assert "locked" in str(locked) and is_infrastructure(locked)
    assert is_infrastructure(raised(lambda: waiter.execute("SELECT * FROM missing")))
    holder.execute("ROLLBACK")
    holder.execute("INSERT INTO t VALUES ('x')")
    duplicate = raised(lambda: holder.execute("INSERT INTO t VALUES ('x')"))
    assert isinstance(duplicate, sqlite3.IntegrityError) and not is_infrastructure(duplicate)
    unbindable = raised(lambda: holder.execute("INSERT INTO t VALUES (?)", ({"a": 1},)))
    assert not is_infrastructure(unbindable)  # a value from an event, not the store
    holder.close()
    waiter.close()


def test_postgresql_unreachable_is_infrastructure_a_nul_is_the_data() -> None:
    unreachable = raised(lambda: psycopg.connect("host=127.0.0.1 port=9 connect_timeout=2"))
    assert is_infrastructure(unreachable)
    conninfo = StoreUrl.parse(POSTGRES_URL).psycopg_conninfo()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        nul = raised(lambda: conn.execute("SELECT %s::text", ("a\x00b",)))
        assert isinstance(nul, psycopg.DataError) and not is_infrastructure(nul)
        missing = raised(lambda: conn.execute("SELECT * FROM no_such_table_here"))
        assert is_infrastructure(missing)  # SQLSTATE 42P01: the schema, not an event
        overflow = raised(lambda: conn.execute("SELECT %s::bigint * 10", (2**62,)))
        assert not is_infrastructure(overflow)  # 22003: a value out of range


@pytest.mark.parametrize("error", [KeyError("x"), ValueError("x"), TypeError("x")])
def test_errors_raised_while_folding_are_the_events(error: Exception) -> None:
    event = RecordedEvent(1, uuid.uuid4(), 1, "pmo.project.proposed", b"{}")
    assert not is_infrastructure(FoldError({event.oid_hex: (event, error)}))
    assert not is_infrastructure(error)
    assert is_infrastructure(MemoryError()) and is_infrastructure(ConnectionError())


def test_an_error_text_is_one_printable_bounded_line() -> None:
    text = describe(ValueError("bad\x00name\nwith a newline " + "x" * 2000))
    assert text.startswith("ValueError: bad\ufffdname\ufffdwith") and len(text) == 500
    assert text.isprintable()
