"""The pipeline ahead of the views, measured on the real broker: messages on pmo.inbound
not yet ingested, stored events not yet relayed (CONTRACT section 11)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from consumers.deadletters import KafkaRefusalSink, producer
from consumers.ingest_worker import InboundWorker, inbound_consumer
from consumers.observe import WorkerMetrics
from consumers.parking import Parking
from consumers.pipeline import Pipeline
from consumers.publisher import to_kafka
from consumers.relay import Relay
from consumers.topics import EVENTS, INBOUND
from domain.application import PmoApplication
from ingest.cloudevents import parse_structured
from ingest.service import Inbound, Refusal
from pmo.bootstrap import build_application, build_ingest, build_services
from pmo.demo_data import generate
from pmo.settings import Settings
from tests.e2e.conftest import AUDIT, KEYS
from tests.kafka_support import kafka_settings, until

pytestmark = pytest.mark.kafka  # the first and the ordering test use the broker


def test_inbound_and_relay_count_what_waits_and_reach_zero(tmp_path: Path) -> None:
    settings = kafka_settings(tmp_path, inbound_partitions=1)
    app = build_application(settings)
    pipeline = Pipeline(settings, app.recorder)
    assert pipeline.status() == {"inbound": 0, "relay": 0, "parked": 0}
    events = generate(projects=5)
    kafka_producer = producer(settings)
    to_kafka(kafka_producer, settings.topic(INBOUND), (orjson.dumps(e) for e in events))
    assert pipeline.inbound() == len(events)  # published, nobody ingesting yet

    sink = KafkaRefusalSink(kafka_producer, settings)
    consumer = inbound_consumer(settings)
    worker = InboundWorker(settings, build_ingest(app, sink), sink, consumer)
    until(worker.step, lambda: sum(worker.outcomes.values()) >= len(events))
    assert pipeline.inbound() == 0  # every outcome durable, every offset committed
    stored = app.recorder.max_notification_id()
    assert stored is not None and stored >= len(events)
    assert pipeline.relay() == stored  # nothing relayed yet

    relay = Relay(app.recorder, kafka_producer, settings.topic(EVENTS), batch=7)
    relay.step()
    assert pipeline.relay() == stored - relay.position > 0
    while relay.step():
        pass
    assert pipeline.status() == {"inbound": 0, "relay": 0, "parked": 0}
    consumer.close(autocommit=False)
    kafka_producer.close()
    pipeline.close()
    app.close()


def test_a_worker_serves_its_gauges_and_liveness() -> None:
    reads = iter([{"pmo_pipeline_relay": 3.0}, RuntimeError("store down")])

    def gauges() -> dict[str, float]:
        value = next(reads)
        if isinstance(value, Exception):
            raise value
        return value

    metrics = WorkerMetrics("relay", gauges)
    port = metrics.serve(0, host="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{port}"
        text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
        assert "pmo_pipeline_relay 3.0\n" in text and 'pmo_worker_up{worker="relay"} 1.0' in text
        text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
        assert "pmo_pipeline_relay" not in text  # a gauge that fails to read is left out
        assert 'pmo_worker_metric_errors_total{worker="relay"} 1.0' in text
        health = urllib.request.urlopen(f"{url}/healthz", timeout=10)
        assert health.status == 200 and orjson.loads(health.read()) == {"status": "ok"}
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{url}/nothing", timeout=10)
        assert missing.value.code == 404
    finally:
        metrics.close()


def opened(key: str) -> Inbound:
    event = {"specversion": "1.0", "id": f"open-{key}", "source": "urn:test",
             "type": "pmo.portfolio.opened", "subject": key, "time": "2026-03-02T09:30:00Z",
             "actor": "tester", "data": {"name": key, "pmo_type": "controlling",
                                         "currency": "EUR", "budget_envelope": "1000.00",
                                         "owner": "Olga"}}
    return Inbound(orjson.dumps(event), parse_structured(event))


class Moving(Pipeline):
    """Events move on while the pipeline is measured: one is parked (and its offset
    committed) while ``inbound`` is read, and one stored (and its row deleted, as a retry
    does) while ``parked`` is read."""

    def __init__(self, settings: Settings, app: PmoApplication) -> None:
        super().__init__(settings, app.recorder)
        self.app = app
        self.parking = Parking(app.recorder)

    def inbound(self) -> int:
        waiting = super().inbound()
        self.parking.park([Refusal("rejected", "no portfolio PF-9 yet", b"{}",
                                   source="urn:test", event_id="e-1", subject="P-1",
                                   code="unknown-aggregate")], {})
        return waiting

    def parked(self) -> int:
        parked = super().parked()
        build_ingest(self.app).submit([opened("PF-MOVED")])
        return parked


def test_each_stage_is_read_after_the_one_before_it(tmp_path: Path) -> None:
    """Read the other way round, the parked event and the stored one would both be missed
    and the pipeline would read 0 everywhere with two events not in any view."""
    settings = kafka_settings(tmp_path)
    app = build_application(settings)
    pipeline = Moving(settings, app)
    try:
        assert pipeline.status() == {"inbound": 1, "relay": 1, "parked": 1}
    finally:
        pipeline.close()
        app.close()


class Counted(Pipeline):
    """Measurements counted, each taking ``slow_s``; the figures are the count."""

    def __init__(self, settings: Settings, slow_s: float = 0.0) -> None:
        super().__init__(settings, None)
        self.measured = 0
        self.slow_s = slow_s
        self.failing = False

    def status(self) -> dict[str, int]:
        time.sleep(self.slow_s)
        if self.failing:
            raise ConnectionError("broker gone")
        self.measured += 1
        return {"inbound": self.measured, "relay": 0, "parked": 0}


def test_recent_figures_are_shared_for_a_moment_and_an_error_is_never_kept(
        tmp_path: Path) -> None:
    pipeline = Counted(Settings(data_dir=tmp_path), slow_s=0.2)
    # Callers that arrive while a measurement is in flight share the next one.
    with ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(lambda _: pipeline.recent(5.0)["inbound"], range(8)))
    assert pipeline.measured <= 2 and set(seen) <= {1, 2}
    first = pipeline.measured
    assert pipeline.recent(5.0)["inbound"] == first  # fresh enough: not measured again
    assert pipeline.recent(0.0)["inbound"] == first + 1  # too old: measured again
    pipeline.failing = True
    for _ in range(2):  # raised each time, never an old figure or a 0 in its place
        with pytest.raises(ConnectionError):
            pipeline.recent(0.0)
    pipeline.failing = False
    assert pipeline.recent(0.0)["inbound"] == first + 2


def test_the_api_reads_the_pipeline_before_the_views(tmp_path: Path) -> None:
    """An event stored while the pipeline is measured shows as lag in the same answer."""
    settings = Settings(data_dir=tmp_path, api_keys=KEYS)
    services = build_services(settings)  # the runner not started: nothing is applied

    class Storing:
        stored = 0

        def recent(self, max_age_s: float) -> dict[str, int]:
            self.stored += 1
            build_ingest(services.app).submit([opened(f"PF-LATE-{self.stored}")])
            return {"inbound": 0, "relay": 0, "parked": 0}

    services.extras["pipeline"] = Storing()
    try:
        with TestClient(create_app(services)) as client:
            body = client.get("/v1/projections", headers=AUDIT).json()
            assert body["pipeline"] == {"inbound": 0, "relay": 0, "parked": 0}
            assert {item["lag"] for item in body["items"]} == {1}
            metrics = client.get("/metrics").text
            lags = {line.rsplit(" ", 1)[1] for line in metrics.splitlines()
                    if line.startswith("pmo_projection_lag{")}
            assert lags == {"2.0"}  # the second event, stored while /metrics measured
    finally:
        services.close()
