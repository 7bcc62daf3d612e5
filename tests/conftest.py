"""Shared fixtures. Real stores only: SQLite files and the PostgreSQL of scripts/postgres-local.sh.

Inside ``make test`` a missing PostgreSQL or Kafka is a failure, never a skip.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from storage.urls import StoreUrl

POSTGRES_URL = os.environ.get("PMO_TEST_POSTGRES_URL",
                              "postgresql://pmo:pmo@127.0.0.1:5432/pmo")
KAFKA_BOOTSTRAP = os.environ.get("PMO_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092")


def fresh_postgres_schema() -> str:
    """A new, empty schema in the test database; its URL selects it."""
    base = StoreUrl.parse(POSTGRES_URL)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(base.psycopg_conninfo(), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as e:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL} "
                    f"(run scripts/postgres-local.sh start): {e}")
    return f"{POSTGRES_URL}?schema={schema}"


def drop_postgres_schema(url: str) -> None:
    parsed = StoreUrl.parse(url)
    with psycopg.connect(parsed.psycopg_conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{parsed.schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store on each backend: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'events.sqlite'}"
        return
    url = fresh_postgres_schema()
    yield url
    drop_postgres_schema(url)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Delete the Kafka topics this session made (tests/kafka_support.py), if any."""
    support = sys.modules.get("tests.kafka_support")
    if support is None or not support.MADE:
        return
    try:
        deleted = support.delete_made_topics()
    except Exception as e:  # a broker that went away must not hide the run's result
        print(f"\n[kafka] could not delete this run's topics: {e!r}", file=sys.stderr)
        return
    print(f"\n[kafka] deleted {deleted} topics this run made", file=sys.stderr)
