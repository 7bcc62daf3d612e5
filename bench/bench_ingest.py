"""Ingest throughput: batches of 500 CloudEvents through the ingest application.

Timed from the raw JSON bytes of each message: envelope parsing, data validation,
decisions and the store transaction, as ``POST /v1/events`` and ``pmo ingest`` do
(the HTTP bench adds the web layer and the views).

Baseline (the floor): the same stored rows written by a bare ``executemany``,
500 rows a transaction, into an identical table of the same database.
Printed per backend: stored events/s (median of runs), the floor, their ratio.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import psycopg

from bench.workload import lifecycle_stream
from ingest.cloudevents import parse_structured
from ingest.service import Inbound, IngestService
from pmo.bootstrap import build_application
from pmo.settings import Settings
from storage.urls import StoreUrl

BATCH = 500
PROJECTS = 1500
RUNS = 3
TARGET_SQLITE = 20_000


def _pg_url() -> str:
    return os.environ.get("PMO_TEST_POSTGRES_URL", "postgresql://pmo:pmo@127.0.0.1:5432/pmo")


def run_ingest(url: str) -> tuple[float, int, list[tuple[str, int, str, bytes]]]:
    app = build_application(Settings(event_store_url=url))
    service = IngestService(app)
    raws = [orjson.dumps(e) for e in lifecycle_stream(PROJECTS)]
    started = time.perf_counter()
    for start in range(0, len(raws), BATCH):
        batch = [Inbound(raw, parse_structured(raw)) for raw in raws[start:start + BATCH]]
        results = service.submit(batch)
        assert all(r.status == "accepted" for r in results), results[:3]
    elapsed = time.perf_counter() - started
    rows = [(n.originator_id.hex, n.originator_version, n.topic, n.state)
            for n in app.recorder.select_notifications(None, 10**7)]
    app.close()
    return len(rows) / elapsed, len(raws), rows


def floor_sqlite(path: Path, rows: list[tuple[str, int, str, bytes]]) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE e (originator_id TEXT, originator_version INTEGER, topic TEXT, "
               "state BLOB, PRIMARY KEY (originator_id, originator_version))")
    started = time.perf_counter()
    for start in range(0, len(rows), BATCH):
        db.execute("BEGIN")
        db.executemany("INSERT INTO e VALUES (?,?,?,?)", rows[start:start + BATCH])
        db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return len(rows) / elapsed


def floor_postgres(url: str, rows: list[tuple[str, int, str, bytes]]) -> float:
    info = StoreUrl.parse(url)
    with psycopg.connect(info.psycopg_conninfo()) as conn:
        conn.execute(f'SET search_path TO "{info.schema}"')
        conn.execute("CREATE TABLE e (originator_id uuid, originator_version bigint, "
                     "topic text, state bytea, notification_id bigserial, "
                     "PRIMARY KEY (originator_id, originator_version))")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cur:
            for start in range(0, len(rows), BATCH):
                cur.executemany("INSERT INTO e (originator_id, originator_version, topic, state)"
                                " VALUES (%s,%s,%s,%s)", rows[start:start + BATCH])
                conn.commit()
        elapsed = time.perf_counter() - started
    return len(rows) / elapsed


def _fresh_pg_schema() -> str:
    base = StoreUrl.parse(_pg_url())
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base.psycopg_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{_pg_url()}?schema={schema}"


def _drop_pg_schema(url: str) -> None:
    info = StoreUrl.parse(url)
    with psycopg.connect(info.psycopg_conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{info.schema}" CASCADE')


def measure(backend: str, make_url: Callable[[Path], str],
            floor: Callable[[str, Path, list[tuple[str, int, str, bytes]]], float],
            cleanup: Callable[[str], None]) -> tuple[float, float]:
    rates, floors = [], []
    for run in range(RUNS):
        with tempfile.TemporaryDirectory() as tmp:
            url = make_url(Path(tmp))
            try:
                rate, inbound, rows = run_ingest(url)
                floors.append(floor(url, Path(tmp) / "floor.sqlite", rows))
            finally:
                cleanup(url)
            rates.append(rate)
            print(f"  {backend} run {run + 1}: {inbound} inbound -> {len(rows)} stored events, "
                  f"{rate:,.0f} stored events/s (floor {floors[-1]:,.0f}/s)", flush=True)
    return statistics.median(rates), statistics.median(floors)


def main() -> int:
    print(f"== ingest: batches of {BATCH} through IngestService "
          f"({PROJECTS} project lifecycles) ==")
    results = {
        "sqlite": measure("sqlite", lambda tmp: f"sqlite:///{tmp / 'events.sqlite'}",
                          lambda url, path, rows: floor_sqlite(path, rows), lambda url: None),
        "postgres": measure("postgres", lambda tmp: _fresh_pg_schema(),
                            lambda url, path, rows: floor_postgres(url, rows), _drop_pg_schema),
    }
    for backend, (rate, floor) in results.items():
        print(f"ingest[{backend}]: median {rate:,.0f} stored events/s; bare executemany floor "
              f"{floor:,.0f} rows/s; ratio {rate / floor:.2f}x")
    sqlite_rate = results["sqlite"][0]
    verdict = "meets" if sqlite_rate >= TARGET_SQLITE else "MISSES"
    print(f"ingest[sqlite] target >= {TARGET_SQLITE:,} events/s: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
