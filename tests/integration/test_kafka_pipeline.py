"""The pipeline ahead of the views, measured on the real broker: messages on pmo.inbound
not yet ingested, stored events not yet relayed (CONTRACT section 11)."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from consumers.deadletters import KafkaRefusalSink, producer
from consumers.ingest_worker import InboundWorker, inbound_consumer
from consumers.observe import WorkerMetrics
from consumers.pipeline import Pipeline
from consumers.publisher import to_kafka
from consumers.relay import Relay
from consumers.topics import EVENTS, INBOUND
from pmo.bootstrap import build_application, build_ingest
from pmo.demo_data import generate
from tests.kafka_support import kafka_settings, until

pytestmark = pytest.mark.kafka


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
