"""Faults with real processes and the real broker: kill -9 mid-stream, broker restart, two
consumers of one group. After each, the store holds every event once and every view (every
money total) equals the embedded reference built from the same CloudEvents."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.workload import as_inbound, lifecycle_stream
from consumers.deadletters import producer
from consumers.positions import RelayPositions
from consumers.publisher import to_kafka
from consumers.relay import Relay
from consumers.topics import EVENTS, INBOUND
from pmo.bootstrap import build_application, build_ingest
from pmo.settings import Settings
from projections.audit_read import verify
from projections.audit_verify import contract
from projections.db import Db
from projections.runner import EmbeddedRunner
from projections.service import ProjectionService
from tests.conftest import drop_postgres_schema, fresh_postgres_schema
from tests.kafka_support import REPO, Worker, kafka_settings, views, wait_for

pytestmark = pytest.mark.kafka

PROJECTS = 1850  # 1 portfolio + 37 managers + 1,850 x 11 project events = 20,388 messages


def split(projects: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The portfolio and pool first (projects refer to them), then the projects' events."""
    stream = lifecycle_stream(projects)
    head = 1 + max(1, projects // 50)
    return stream[:head], stream[head:]


def reference(tmp_path: Path, projects: int) -> tuple[int, dict[str, Any]]:
    """Store count and views of the same events in embedded mode."""
    settings = Settings(data_dir=tmp_path / "reference")
    app = build_application(settings)
    base, rest = split(projects)
    ingest = build_ingest(app)
    inbound = as_inbound(base + rest)
    for start in range(0, len(inbound), 1000):
        assert {r.status for r in ingest.submit(inbound[start:start + 1000])} == {"accepted"}
    service = ProjectionService(Db(settings.projection_store))
    EmbeddedRunner(app, service).catch_up()
    count = len(app.recorder.select_notifications(None, 10**7))
    result = views(service)
    service.close()
    app.close()
    return count, result


class Stores:
    """What the test reads of the workers' stores, from outside."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = build_application(settings)
        self.positions = RelayPositions(self.app.recorder)
        self.projections = settings.projection_store.path

    def _scalar(self, path: str, sql: str) -> int:
        try:
            with sqlite3.connect(path, timeout=30) as db:
                row = db.execute(sql).fetchone()
        except sqlite3.OperationalError:
            return 0  # not created yet
        return int(row[0] or 0) if row else 0

    def stored(self) -> int:
        return len(self.app.recorder.select_notifications(None, 10**7))

    def stored_at_least(self, count: int) -> bool:
        """Cheap while waiting: the highest id (ids may have gaps on PostgreSQL)."""
        return (self.app.recorder.max_notification_id() or 0) >= count

    def relayed(self) -> int:
        return self.positions.get(self.settings.topic(EVENTS))

    def consumed(self, projection: str) -> int:
        """Messages of pmo.events the projection has applied (sum of its partition offsets)."""
        return self._scalar(self.projections, "SELECT SUM(value) FROM pv_tracking WHERE "
                            f"projection = '{projection}' AND key LIKE '%pmo.events:%'")

    def check(self, expected_count: int, expected_views: dict[str, Any]) -> None:
        service = ProjectionService(Db(self.settings.projection_store))
        try:
            assert self.stored() == expected_count
            assert contract(verify(service.db, self.app)) == {"ok": True, "checked": expected_count}
            got = views(service)
            for name, body in expected_views.items():
                for mine, want in zip(got[name]["items"], body["items"], strict=True):
                    assert mine == want, name
        finally:
            service.close()

    def close(self) -> None:
        self.app.close()


def publish(settings: Settings, events: list[dict[str, Any]], per_second: int = 0) -> None:
    kafka_producer = producer(settings, linger_ms=10)
    chunk = per_second // 10 or len(events)
    for start in range(0, len(events), chunk):
        to_kafka(kafka_producer, settings.topic(INBOUND),
                 (orjson.dumps(e) for e in events[start:start + chunk]))
        if per_second:
            time.sleep(0.1)
    kafka_producer.close()


@pytest.mark.parametrize("event_store", ["sqlite", "postgres"])
def test_kill_9_of_ingest_relay_and_consume_mid_stream_loses_and_doubles_nothing(
        event_store: str, tmp_path: Path) -> None:
    expected, expected_views = reference(tmp_path, PROJECTS)
    overrides = {}
    if event_store == "postgres":
        overrides["event_store_url"] = fresh_postgres_schema()
    settings = kafka_settings(tmp_path, **overrides)
    stores = Stores(settings)
    base, rest = split(PROJECTS)
    workers = [Worker(settings, tmp_path, "ingest"), Worker(settings, tmp_path, "relay"),
               Worker(settings, tmp_path, "consume", "--all")]
    ingest, relay, consume = workers
    try:
        publish(settings, base)
        wait_for(lambda: stores.stored() == len(base), "the pool", workers=workers)
        feeder = threading.Thread(target=publish, args=(settings, rest, 8000))
        feeder.start()

        wait_for(lambda: stores.stored_at_least(expected // 4), "a quarter stored",
                 workers=workers)
        ingest.kill()
        ingest.start()
        wait_for(lambda: stores.relayed() >= expected // 2, "half relayed", workers=workers)
        relay.kill()
        relay.start()
        wait_for(lambda: stores.consumed("audit") >= expected * 2 // 3, "two thirds audited",
                 workers=workers)
        consume.kill()
        consume.start()
        feeder.join()

        wait_for(lambda: all(stores.consumed(p) >= expected for p in (
            "audit", "projects", "portfolios", "managers")), "every view", timeout_s=240,
            workers=workers)
        time.sleep(1)  # anything counted twice would show now
        stores.check(expected, expected_views)
        for name in ("audit", "projects", "portfolios", "managers"):
            assert stores.consumed(name) >= expected  # redelivered messages are allowed
    finally:
        for w in workers:
            w.stop()
        stores.close()
        if event_store == "postgres":
            drop_postgres_schema(settings.event_store_url or "")


def test_workers_recover_by_themselves_from_a_broker_restart(tmp_path: Path) -> None:
    projects = 900
    expected, expected_views = reference(tmp_path, projects)
    # Small batches: ingest is still busy when the broker goes away.
    settings = kafka_settings(tmp_path, ingest_batch_size=50)
    stores = Stores(settings)
    base, rest = split(projects)
    workers = [Worker(settings, tmp_path, "ingest"), Worker(settings, tmp_path, "relay"),
               Worker(settings, tmp_path, "consume", "--all")]
    script = str(REPO / "scripts" / "kafka-local.sh")
    try:
        publish(settings, base)
        wait_for(lambda: stores.stored() == len(base), "the pool", workers=workers)
        publish(settings, rest)
        wait_for(lambda: stores.stored_at_least(expected // 5), "a fifth stored",
                 workers=workers)
        subprocess.run([script, "stop"], check=True, capture_output=True, timeout=120)
        assert stores.consumed("audit") < expected, "the stream ended before the broker stopped"
        time.sleep(2)
        subprocess.run([script, "start"], check=True, capture_output=True, timeout=180)
        wait_for(lambda: all(stores.consumed(p) >= expected for p in (
            "audit", "projects", "portfolios", "managers")), "every view", timeout_s=240,
            workers=workers)
        stores.check(expected, expected_views)
    finally:
        subprocess.run([script, "start"], check=True, capture_output=True, timeout=180)
        for w in workers:
            w.stop()
        stores.close()


def test_two_consumers_split_partitions_and_one_dying_changes_no_total(tmp_path: Path) -> None:
    expected, expected_views = reference(tmp_path, PROJECTS)
    settings = kafka_settings(tmp_path, kafka_partitions=6)
    stores = Stores(settings)
    app = build_application(settings)
    base, rest = split(PROJECTS)
    ingest = build_ingest(app)
    inbound = as_inbound(base + rest)
    for start in range(0, len(inbound), 1000):
        ingest.submit(inbound[start:start + 1000])
    # The audit too: two processes link one chain, each writing the rows of its partitions.
    names = ("projects", "portfolios", "managers", "audit")
    pair = [Worker(settings, tmp_path, "consume", *names) for _ in range(2)]
    kafka_producer = producer(settings, linger_ms=10)
    relay = Relay(app.recorder, kafka_producer, settings.topic(EVENTS), batch=1000)
    try:
        # Eager rebalancing: once both hold 3 of the 6 partitions, the split is done.
        wait_for(lambda: all(_holds(w, 3, n) for w in pair for n in ("projects", "audit")),
                 "both consumers assigned", workers=pair)
        relay.step()
        wait_for(lambda: stores.consumed("projects") >= 1000, "both consuming", workers=pair)
        while relay.position < expected // 3:
            relay.step()
            time.sleep(0.05)
        pair[0].kill()
        while relay.step():
            time.sleep(0.05)
        wait_for(lambda: all(stores.consumed(n) >= expected for n in names),
                 "the survivor finishing", timeout_s=180, workers=pair[1:])
        # The survivor took over the dead one's partitions.
        assert _holds(pair[1], 6) and _holds(pair[1], 6, "audit")
        service = ProjectionService(Db(settings.projection_store))
        got = views(service)
        for name, body in expected_views.items():
            assert got[name] == body, name
        assert contract(verify(service.db, app)) == {"ok": True, "checked": expected}
        assert service.audit.waiting() == 0
        service.close()
    finally:
        kafka_producer.close()
        app.close()
        for w in pair:
            w.stop()
        stores.close()


def _holds(worker: Worker, partitions: int, name: str = "projects") -> bool:
    """The worker's latest assignment of projection ``name`` has this many partitions."""
    lines = [x for x in worker.log().splitlines() if f"{name}: assigned" in x]
    return bool(lines) and lines[-1].count("pmo.events:") == partitions
