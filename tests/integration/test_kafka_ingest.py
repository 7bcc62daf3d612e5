"""``pmo ingest``'s loop against the real broker: both content modes, dead letters, duplicates."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.workload import event
from consumers.deadletters import KafkaRefusalSink, producer
from consumers.ingest_worker import InboundWorker, inbound_consumer
from consumers.membership import Membership
from consumers.rejections import RejectionConsumer
from consumers.topics import DLQ, INBOUND, REJECTED
from domain.application import PmoApplication
from pmo.bootstrap import build_application, build_ingest
from pmo.settings import Settings
from projections.db import Db
from projections.rejections import RejectionLog
from tests.kafka_support import header, kafka_settings, produce, read_all, until

pytestmark = pytest.mark.kafka

STRUCTURED = [("content-type", b"application/cloudevents+json")]
OPEN = event(1, "pmo.portfolio.opened", "PF-1", {
    "name": "Alpha", "pmo_type": "controlling", "currency": "EUR",
    "budget_envelope": "1000000", "owner": "pmo"})
PROPOSE = event(2, "pmo.project.proposed", "P-1", {
    "portfolio_id": "PF-1", "name": "One", "sponsor": "cfo", "budget_requested": "5000",
    "planned_start": "2026-01-01", "planned_finish": "2026-06-30"})
REGISTER = event(3, "pmo.manager.registered", "M-1", {"name": "Ann", "capacity": 2})


def structured(e: dict[str, Any], headers: list[tuple[str, bytes]] | None = None,
               ) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    return e["subject"].encode(), orjson.dumps(e), STRUCTURED if headers is None else headers


def binary(e: dict[str, Any]) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    headers = [("content-type", b"application/json")] + [
        (f"ce_{k}", str(v).encode()) for k, v in e.items() if k != "data"]
    return e["subject"].encode(), orjson.dumps(e["data"]), headers


class Pipeline:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: PmoApplication = build_application(settings)
        self.producer = producer(settings)
        self.sink = KafkaRefusalSink(self.producer, settings)
        self.consumer = inbound_consumer(settings)
        self.worker = InboundWorker(settings, build_ingest(self.app, self.sink), self.sink,
                                    self.consumer)

    def ingest(self, count: int) -> None:
        until(self.worker.step, lambda: sum(self.worker.outcomes.values()) >= count)

    def stored(self) -> int:
        return len(self.app.recorder.select_notifications(None, 10**6))

    def close(self) -> None:
        self.consumer.close(autocommit=False)
        self.producer.close()
        self.app.close()


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    p = Pipeline(kafka_settings(tmp_path, max_body_bytes=4096))
    yield p
    p.close()


def test_ingest_stores_events_in_both_content_modes(pipeline: Pipeline) -> None:
    no_content_type = structured(REGISTER, headers=[])
    produce(pipeline.settings.topic(INBOUND),
            [structured(OPEN), binary(PROPOSE), no_content_type])
    pipeline.ingest(3)
    assert dict(pipeline.worker.outcomes) == {"accepted": 3}
    topics = [n.topic for n in pipeline.app.recorder.select_notifications(None, 10)]
    assert sorted(topics) == ["pmo.manager.registered", "pmo.portfolio.opened",
                              "pmo.project.proposed"]


def test_refused_messages_go_to_the_right_topic_with_reason_and_original_bytes(
        pipeline: Pipeline) -> None:
    inbound = pipeline.settings.topic(INBOUND)
    wrong_schema = {**OPEN, "id": "x-2"}
    del wrong_schema["source"]
    unknown_type = {**OPEN, "id": "x-3", "type": "pmo.portfolio.exploded"}
    oversize = {**OPEN, "id": "x-4", "data": {**OPEN["data"], "name": "N" * 5000}}
    approve_unknown = event(5, "pmo.project.approved", "P-404",
                            {"approved_budget": "10", "approver": "board"})
    trace = ("x-trace", b"abc")
    sent = [
        (b"PF-1", b'{"specversion": "1.0", "id": ', [*STRUCTURED, trace]),  # malformed JSON
        structured(wrong_schema, [*STRUCTURED, trace]),
        structured(unknown_type, [*STRUCTURED, trace]),
        structured(oversize, [*STRUCTURED, trace]),
        structured(approve_unknown, [*STRUCTURED, trace]),
    ]
    produce(inbound, sent)
    pipeline.ingest(len(sent))

    assert dict(pipeline.worker.outcomes) == {"invalid": 4, "rejected": 1}
    assert pipeline.stored() == 0
    dead = {m.value: m for m in read_all(pipeline.settings.topic(DLQ), 4)}
    rejected = read_all(pipeline.settings.topic(REJECTED), 1)
    assert len(dead) == 4 and len(rejected) == 1
    reasons = {value: header(m, "pmo_reason") or b"" for value, m in dead.items()}
    assert b"not valid JSON" in reasons[sent[0][1]]
    assert b"source" in reasons[sent[1][1]]
    assert b"unknown event type" in reasons[sent[2][1]]
    assert b"over the limit of 4096 bytes" in reasons[sent[3][1]]
    assert b"P-404" in (header(rejected[0], "pmo_reason") or b"")
    for m in [*dead.values(), *rejected]:
        assert header(m, "x-trace") == b"abc"  # original headers kept
        assert header(m, "pmo_source_topic") == inbound.encode()
        assert (header(m, "pmo_source_partition") or b"x").isdigit()
        assert (header(m, "pmo_source_offset") or b"x").isdigit()
    assert rejected[0].value == sent[4][1] and rejected[0].key == b"P-404"
    assert dead[sent[0][1]].key == b"PF-1"  # the original key, even when unreadable


def test_a_redelivered_event_changes_nothing(pipeline: Pipeline) -> None:
    produce(pipeline.settings.topic(INBOUND), [structured(OPEN)] * 3)
    pipeline.ingest(3)
    assert dict(pipeline.worker.outcomes) == {"accepted": 1, "duplicate": 2}
    assert pipeline.stored() == 1


def test_offsets_are_committed_so_a_restart_reads_nothing_again(pipeline: Pipeline) -> None:
    produce(pipeline.settings.topic(INBOUND), [structured(OPEN), structured(REGISTER)])
    pipeline.ingest(2)
    pipeline.consumer.close(autocommit=False)
    again = inbound_consumer(pipeline.settings)
    pipeline.consumer = again
    worker = InboundWorker(pipeline.settings, build_ingest(pipeline.app, pipeline.sink),
                           pipeline.sink, again)
    produce(pipeline.settings.topic(INBOUND), [structured(PROPOSE)])
    until(worker.step, lambda: sum(worker.outcomes.values()) >= 1)
    assert dict(worker.outcomes) == {"accepted": 1}  # only the new one
    assert pipeline.stored() == 3


def test_dead_letters_reach_the_rejection_log(pipeline: Pipeline) -> None:
    produce(pipeline.settings.topic(INBOUND), [
        structured(OPEN), (b"K", b"{not json", []),
        structured(event(9, "pmo.project.started", "P-404", {"started_on": "2026-02-01"}))])
    pipeline.ingest(3)
    log = RejectionLog(Db(pipeline.settings.projection_store))
    log.create_tables()
    consumer = RejectionConsumer(pipeline.settings, log)
    until(consumer.step, lambda: consumer.recorded >= 2)
    consumer.close()
    assert log.counts() == {"dlq": 1, "rejected": 1}
    items, _ = log.page(None, 0, 10)
    by_kind = {i["kind"]: i for i in items}
    assert base64.b64decode(by_kind["dlq"]["raw_base64"]) == b"{not json"
    assert "not valid JSON" in by_kind["dlq"]["reason"]
    assert by_kind["rejected"]["subject"] == "P-404"
    assert by_kind["rejected"]["origin"].startswith(f"kafka:{pipeline.settings.topic(INBOUND)}:")

    restarted = RejectionConsumer(pipeline.settings, log)  # resumes from the log's offsets
    for _ in range(10):
        restarted.step()
    restarted.close()
    assert log.counts() == {"dlq": 1, "rejected": 1}


def test_a_member_stuck_in_a_rebalance_is_replaced_and_nothing_is_lost(
        pipeline: Pipeline) -> None:
    # What kafka-python 3.0.12 was seen to do (consumers.membership), simulated on a live
    # member: its replacement resumes from the group's committed offsets.
    pipeline.consumer.close(autocommit=False)
    settings = pipeline.settings
    worker = InboundWorker(settings, build_ingest(pipeline.app, pipeline.sink), pipeline.sink,
                           inbound_consumer(settings), rejoin=lambda: inbound_consumer(settings),
                           membership=Membership(limit_s=0.5))
    produce(settings.topic(INBOUND), [structured(OPEN), structured(REGISTER)])
    until(worker.step, lambda: sum(worker.outcomes.values()) >= 2)
    stuck = worker._consumer
    stuck._coordinator.state = "<rebalancing>"
    until(worker.step, lambda: worker._consumer is not stuck, timeout_s=30)
    pipeline.consumer = worker._consumer  # closed by the fixture
    produce(settings.topic(INBOUND), [structured(PROPOSE)])
    until(worker.step, lambda: sum(worker.outcomes.values()) >= 3)
    assert dict(worker.outcomes) == {"accepted": 3}  # nothing read twice, nothing lost
    assert pipeline.stored() == 3
