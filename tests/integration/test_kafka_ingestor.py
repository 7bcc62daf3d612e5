"""The API's Kafka-mode ingestor and ``pmo publish``, against the real broker."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from bench.workload import event
from consumers.deadletters import producer
from consumers.ingestor import KafkaIngestor
from consumers.publisher import lines, to_kafka
from consumers.topics import DLQ, INBOUND
from ingest.cloudevents import parse_structured
from ingest.service import Inbound
from tests.kafka_support import header, kafka_settings, read_all

pytestmark = pytest.mark.kafka

OPEN = event(1, "pmo.portfolio.opened", "PF-9", {
    "name": "Alpha", "pmo_type": "supportive", "currency": "EUR",
    "budget_envelope": "1000", "owner": "pmo"})


def test_valid_events_are_queued_to_inbound_and_invalid_ones_answered_and_dead_lettered(
        tmp_path: Path) -> None:
    settings = kafka_settings(tmp_path)
    ingestor = KafkaIngestor(settings, producer(settings))
    bad_data = {**OPEN, "id": "2", "data": {"name": "no type"}}
    results = ingestor.submit([
        Inbound(orjson.dumps(OPEN), parse_structured(OPEN)),
        Inbound(orjson.dumps(bad_data), parse_structured(bad_data)),
        Inbound(b"{oops", error="not valid JSON"),
    ])
    ingestor.close()
    assert [r.status for r in results] == ["queued", "invalid", "invalid"]
    assert results[0].id == "bench-1" and "pmo_type" in (results[1].reason or "")
    queued = read_all(settings.topic(INBOUND), 1)
    assert len(queued) == 1 and queued[0].key == b"PF-9"
    assert header(queued[0], "content-type") == b"application/cloudevents+json"
    assert parse_structured(queued[0].value) == parse_structured(OPEN)
    dead = read_all(settings.topic(DLQ), 2)
    assert sorted(m.value for m in dead) == sorted([orjson.dumps(bad_data), b"{oops"])


def test_publish_sends_each_line_keyed_by_subject_in_either_mode(tmp_path: Path) -> None:
    settings = kafka_settings(tmp_path)
    path = tmp_path / "events.jsonl"
    second = {**OPEN, "id": "2", "subject": "PF-10"}
    path.write_bytes(orjson.dumps(OPEN) + b"\n\n" + orjson.dumps(second) + b"\n")
    kafka_producer = producer(settings)
    assert to_kafka(kafka_producer, settings.topic(INBOUND), lines(str(path))) == 2
    assert to_kafka(kafka_producer, settings.topic(INBOUND), lines(str(path)), binary=True) == 2
    kafka_producer.close()
    sent = read_all(settings.topic(INBOUND), 4)
    assert sorted(m.key for m in sent) == [b"PF-10", b"PF-10", b"PF-9", b"PF-9"]
    binary = [m for m in sent if header(m, "ce_id") is not None]
    assert len(binary) == 2
    assert {orjson.loads(m.value)["name"] for m in binary} == {"Alpha"}
    assert {header(m, "ce_type") for m in binary} == {b"pmo.portfolio.opened"}
