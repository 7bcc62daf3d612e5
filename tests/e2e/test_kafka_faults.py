"""Faults with real processes and the real broker: kill -9 mid-stream, broker restart, two
consumers of one group. After each, the store holds every event once and every view (every
money total) equals the embedded reference built from the same CloudEvents."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.v1.event import CloudEvent
from fastapi.testclient import TestClient
from kafka import KafkaProducer
from kafka.partitioner.default import murmur2

from api.app import create_app
from bench.workload import as_inbound, lifecycle_stream
from consumers.deadletters import producer
from consumers.parking import Parking
from consumers.positions import RelayPositions
from consumers.projector import events_consumer
from consumers.publisher import to_kafka
from consumers.relay import Relay
from consumers.topics import DLQ, EVENTS, INBOUND, REJECTED
from pmo.bootstrap import build_application, build_ingest, build_services
from pmo.settings import Settings
from projections.audit_read import verify
from projections.audit_verify import contract
from projections.db import Db
from projections.runner import EmbeddedRunner
from projections.service import ProjectionService
from tests.conftest import KAFKA_BOOTSTRAP, drop_postgres_schema, fresh_postgres_schema
from tests.e2e.conftest import AUDIT, KEYS
from tests.kafka_support import (
    REPO,
    Worker,
    kafka_settings,
    read_all,
    views,
    wait_for,
    without_recording_times,
)

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


# The run of issue 10's "Why": 5,000 cost events of 1.00 and one of 0.10 for one project,
# published with the official CloudEvents SDK right behind their parents.
COSTS = 5000
TRUTH_EVENTS = 4 + COSTS + 1  # opened, proposed, approved, started; the costs (CloudEvents)


def sdk_stream(portfolio_id: str, project_id: str) -> list[Any]:
    """The portfolio's ``opened``, the project's parents and costs, as SDK CloudEvents."""
    def event(n: int, type_: str, subject: str, data: dict[str, Any]) -> CloudEvent:
        return CloudEvent(attributes={
            "id": f"truth-{n}", "source": "urn:migration", "type": type_, "subject": subject,
            "time": datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
            "datacontenttype": "application/json", "actor": "loader"}, data=data)

    parents = [
        event(0, "pmo.portfolio.opened", portfolio_id, {
            "name": "Migration", "pmo_type": "controlling", "currency": "EUR",
            "budget_envelope": "1000000.00", "owner": "Olga"}),
        event(1, "pmo.project.proposed", project_id, {
            "portfolio_id": portfolio_id, "name": "Bulk load", "sponsor": "COO",
            "budget_requested": "100000.00", "planned_start": "2026-04-01",
            "planned_finish": "2026-12-15"}),
        event(2, "pmo.project.approved", project_id, {"approved_budget": "100000.00",
                                                      "approver": "Steering"}),
        event(3, "pmo.project.started", project_id, {"started_on": "2026-04-02"})]
    costs = [event(4 + n, "pmo.project.cost_recorded", project_id, {
        "amount": "0.10" if n == COSTS else "1.00", "currency": "EUR",
        "incurred_on": "2026-05-01", "category": "labour", "reference": f"inv-{n}"})
        for n in range(COSTS + 1)]
    return parents + costs


def on_other_partitions(partitions: int) -> tuple[str, str]:
    """A portfolio and a project whose keys land on different partitions of pmo.inbound
    (the Java client's and kafka-python's default partitioner: murmur2 of the key)."""
    def partition(key: str) -> int:
        return int(murmur2(key.encode()) & 0x7FFFFFFF) % partitions

    portfolio_id = "PF-MIGRATION"
    project_id = next(f"PRJ-BULK-{n}" for n in range(100)
                      if partition(f"PRJ-BULK-{n}") != partition(portfolio_id))
    return portfolio_id, project_id


def publish_sdk(topic: str, events: list[Any], per_second: int) -> None:
    """Kafka binary mode of the SDK, keyed by subject (CONTRACT), ``per_second`` at most;
    the first chunk holds the parents and their first children, back to back."""
    messages = [ce_kafka.to_binary_event(e, key_mapper=lambda e: e.get_subject())
                for e in events]
    kafka_producer = KafkaProducer(bootstrap_servers=KAFKA_BOOTSTRAP, linger_ms=5)
    futures = []
    chunk = per_second // 10
    for start in range(0, len(messages), chunk):
        for m in messages[start:start + chunk]:
            key = m.key.encode() if isinstance(m.key, str) else m.key
            futures.append(kafka_producer.send(topic, key=key, value=m.value,
                                               headers=list(m.headers.items())))
        kafka_producer.flush()
        time.sleep(0.1)
    for f in futures:
        f.get(timeout=30)
    kafka_producer.close()


def caught_up(client: TestClient) -> bool:
    """What a dashboard reads: the pipeline and every view's lag at 0."""
    body = client.get("/v1/projections", headers=AUDIT).json()
    ahead = body["pipeline"]
    return (ahead["inbound"] == ahead["relay"] == ahead["parked"] == 0
            and all(item["lag"] == 0 for item in body["items"]))


def sdk_reference(tmp_path: Path, events: list[Any], paths: list[str],
                  ) -> tuple[int, list[dict[str, Any]]]:
    """Store count and the views at ``paths`` of the same events in embedded mode, in order
    (the SDK's structured mode: one JSON document each)."""
    settings = Settings(data_dir=tmp_path / "reference", api_keys=KEYS)
    services = build_services(settings)
    try:
        inbound = as_inbound([orjson.loads(ce_kafka.to_structured_event(e).value)
                              for e in events])
        ingest = build_ingest(services.app)
        for start in range(0, len(inbound), 1000):
            assert {r.status for r in ingest.submit(inbound[start:start + 1000])} == {
                "accepted"}
        assert isinstance(services.runner, EmbeddedRunner)
        services.runner.catch_up()
        count = len(services.app.recorder.select_notifications(None, 10**7))
        with TestClient(create_app(services), raise_server_exceptions=False) as client:
            bodies = [without_recording_times(client.get(p, headers=AUDIT).json())
                      for p in paths]
    finally:
        services.close()
    return count, bodies


def kill_on_the_way(order: str, expected: int, stores: Stores, workers: list[Worker]) -> None:
    """kill -9 (and start again) of ``consume`` a third of the way, of ``ingest`` two
    thirds: the way is what is consumed and stored (``in-order``) or parked (the 5,004
    events of ``portfolio-last`` before their portfolio comes)."""
    ingest, _, consume = workers
    parking = Parking(stores.app.recorder)
    killed: set[str] = set()

    def kill_on_time() -> bool:
        if order == "in-order":
            done, consumed, stored = expected, stores.consumed("audit"), stores.stored()
        else:
            done, consumed = expected - 2, parking.count()
            stored = consumed
        if "consume" not in killed and consumed >= done // 3:
            assert consumed < done, "the run ended first"
            consume.kill()
            consume.start()
            killed.add("consume")
        if "ingest" not in killed and stored >= done * 2 // 3:
            assert stored < done, "the run ended first"
            ingest.kill()
            ingest.start()
            killed.add("ingest")
        return len(killed) == 2
    wait_for(kill_on_time, "a third and two thirds of the run", workers=workers)


@pytest.mark.parametrize("order", ["in-order", "portfolio-last"])
def test_the_first_read_after_the_pipeline_reports_0_everywhere_is_exact(
        order: str, tmp_path: Path) -> None:
    """``in-order``: the parents first, the children right behind them; the consumer is
    killed (-9) a third of the way through, ingest two thirds. ``portfolio-last``: the
    portfolio's ``opened`` right behind its project's 5,004 events, so every one of them
    is parked first; the consumer is killed a third of the way, ingest with two thirds
    parked: the parked events survive it."""
    settings = kafka_settings(tmp_path, inbound_partitions=6, kafka_partitions=6,
                              api_keys=KEYS)
    portfolio_id, project_id = on_other_partitions(6)
    events = sdk_stream(portfolio_id, project_id)
    assert len(events) == TRUTH_EVENTS
    paths = [f"/v1/projects/{project_id}", f"/v1/portfolios/{portfolio_id}"]
    # 5,005 CloudEvents and what they cause (the approval commits the portfolio's budget).
    expected, (project_view, portfolio_view) = sdk_reference(tmp_path, events, paths)
    assert Decimal(project_view["actual_cost"]) == Decimal("5000.10")
    published = events if order == "in-order" else events[1:] + events[:1]
    stores = Stores(settings)
    workers = [Worker(settings, tmp_path, "ingest"), Worker(settings, tmp_path, "relay"),
               Worker(settings, tmp_path, "consume", "--all")]
    consume = workers[2]
    services = build_services(settings)
    try:
        with TestClient(create_app(services), raise_server_exceptions=False) as client:
            wait_for(lambda: "projects: assigned" in consume.log(), "the consumer assigned",
                     workers=workers)
            feeder = threading.Thread(target=publish_sdk, args=(
                settings.topic(INBOUND), published, 1500))
            feeder.start()
            kill_on_the_way(order, expected, stores, workers)
            feeder.join()

            wait_for(lambda: caught_up(client), "the pipeline at 0 everywhere",
                     timeout_s=120, workers=workers)
            # The first read after "caught up": exact, not a total two seconds early.
            project = client.get(paths[0], headers=AUDIT)
            assert project.status_code == 200, project.text
            assert Decimal(project.json()["actual_cost"]) == Decimal("5000.10")
            assert without_recording_times(project.json()) == project_view
            portfolio = client.get(paths[1], headers=AUDIT)
            assert without_recording_times(portfolio.json()) == portfolio_view
        assert stores.stored() == expected
        assert contract(verify(services.projections.db, stores.app)) == {
            "ok": True, "checked": expected}
        # Nothing was refused on the way: a proposal that overtook its portfolio waited.
        assert read_all(settings.topic(REJECTED), 0) == []
        assert read_all(settings.topic(DLQ), 0) == []
    finally:
        services.close()
        for w in workers:
            w.stop()
        stores.close()


def _forward(listener: socket.socket, target: tuple[str, int], stop: threading.Event) -> None:
    """A TCP forwarder: the broker, reachable at ``listener``'s port only once this runs."""
    def pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while chunk := a.recv(65536):
                b.sendall(chunk)
        except OSError:
            pass
        finally:
            a.close()
            b.close()

    listener.settimeout(0.2)
    while not stop.is_set():
        try:
            client, _ = listener.accept()
        except TimeoutError:
            continue
        upstream = socket.create_connection(target)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=pipe, args=(a, b), daemon=True).start()
    listener.close()


def test_a_worker_started_before_its_broker_waits_for_it(tmp_path: Path) -> None:
    """``pmo consume`` started while no broker answers (compose starting it first, or a
    broker restart under way) waits for it, then consumes: it never dies at start."""
    expected, _ = reference(tmp_path, 40)
    settings = kafka_settings(tmp_path)
    app = build_application(settings)
    base, rest = split(40)
    build_ingest(app).submit(as_inbound(base + rest))
    with socket.socket() as probe:  # a port nothing listens on yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    late = settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{port}"})
    worker = Worker(late, tmp_path, "consume", "projects")
    stores = Stores(settings)
    stop = threading.Event()
    kafka_producer = producer(settings, linger_ms=10)
    try:
        # It tried and found no broker (however slowly a loaded machine starts it), and
        # it is still alive a few retries later.
        wait_for(lambda: "ECONNREFUSED" in worker.log(), "the worker's first try",
                 timeout_s=60, workers=[worker])
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            assert worker.alive(), worker.log()[-3000:]
            time.sleep(0.2)
        listener = socket.socket()
        listener.bind(("127.0.0.1", port))
        listener.listen()
        host, broker_port = KAFKA_BOOTSTRAP.split(":")
        threading.Thread(target=_forward, args=(listener, (host, int(broker_port)), stop),
                         daemon=True).start()
        relay = Relay(app.recorder, kafka_producer, settings.topic(EVENTS), batch=1000)
        while relay.step():
            pass
        wait_for(lambda: stores.consumed("projects") >= expected, "the late worker consuming",
                 workers=[worker])
    finally:
        stop.set()
        kafka_producer.close()
        worker.stop()
        stores.close()
        app.close()


def test_a_client_made_while_no_broker_answers_waits_for_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """kafka-python's constructors bootstrap, and raise when no broker answers in time: a
    worker whose broker went away between its start and its consumer (CI met it during a
    broker restart) waited for it only once ``connected`` wraps them."""
    settings = kafka_settings(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    late = settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{port}"})
    stop = threading.Event()

    def broker_comes_back() -> None:
        time.sleep(3)
        listener = socket.socket()
        listener.bind(("127.0.0.1", port))
        listener.listen()
        host, broker_port = KAFKA_BOOTSTRAP.split(":")
        _forward(listener, (host, int(broker_port)), stop)

    threading.Thread(target=broker_comes_back, daemon=True).start()
    began = time.monotonic()
    try:
        # One bootstrap attempt gives up after 1 s: several fail before the broker is back.
        consumer = events_consumer(late, "late-group", bootstrap_timeout_ms=1000)
        assert time.monotonic() - began >= 3
        assert consumer.partitions_for_topic(settings.topic(EVENTS))
        assert "to the broker" in caplog.text
        consumer.close()
    finally:
        stop.set()
