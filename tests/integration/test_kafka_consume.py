"""``pmo consume`` against the real broker: views equal to the embedded runner's, field by field.

The demo portfolio goes the whole Kafka way (pmo.inbound -> ingest -> store ->
relay -> pmo.events -> consumers) into one projection store, and the embedded
runner reads the same event store into another; every view table must match,
including the audit trail's hash chain, though partitions interleave.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from consumers.codec import EventDecoder
from consumers.deadletters import KafkaRefusalSink, producer
from consumers.ingest_worker import InboundWorker, inbound_consumer
from consumers.membership import Membership
from consumers.positions import RelayPositions
from consumers.projector import ProjectionConsumer
from consumers.publisher import to_kafka
from consumers.relay import Relay
from consumers.topics import EVENTS, INBOUND
from domain.application import PmoApplication
from ingest.cloudevents import parse_structured
from ingest.service import Inbound
from pmo.bootstrap import build_application, build_ingest
from pmo.demo_data import generate
from pmo.settings import Settings
from projections.db import Db
from projections.runner import EmbeddedRunner
from projections.service import ProjectionService
from storage.urls import StoreUrl
from tests.kafka_support import kafka_settings, until, views

pytestmark = pytest.mark.kafka


def tables(service: ProjectionService) -> dict[str, list[tuple[Any, ...]]]:
    return {t: sorted(service.db.query(f"SELECT * FROM {t}"), key=repr)
            for p in service.projections.values() for t in p.tables}


def ingest_through_kafka(settings: Settings, app: PmoApplication, events: list[Any]) -> None:
    kafka_producer = producer(settings)
    to_kafka(kafka_producer, settings.topic(INBOUND), (orjson.dumps(e) for e in events))
    sink = KafkaRefusalSink(kafka_producer, settings)
    consumer = inbound_consumer(settings)
    worker = InboundWorker(settings, build_ingest(app, sink), sink, consumer)
    until(worker.step, lambda: sum(worker.outcomes.values()) >= len(events))
    assert worker.outcomes["accepted"] == len(events), worker.outcomes
    consumer.close(autocommit=False)
    relay = Relay(app.recorder, kafka_producer, settings.topic(EVENTS))
    while relay.step():
        pass
    kafka_producer.close()


def consume_all(settings: Settings, service: ProjectionService, expected: int) -> None:
    decoder = EventDecoder.for_pmo()
    consumers = [ProjectionConsumer(settings, p, decoder) for p in service.projections.values()]
    try:
        until(lambda: [c.step() for c in consumers],
              lambda: all(c.applied >= expected for c in consumers))
    except AssertionError:
        raise AssertionError([(c.projection.name, c.applied) for c in consumers]) from None
    for c in consumers:
        c.step()  # nothing more may come
        assert c.applied == expected
        c.close()


def test_kafka_consumers_build_the_same_views_as_the_embedded_runner(tmp_path: Path) -> None:
    settings = kafka_settings(tmp_path, inbound_partitions=1, kafka_partitions=4)
    app = build_application(settings)
    ingest_through_kafka(settings, app, generate())
    stored = len(app.recorder.select_notifications(None, 10**6))

    via_kafka = ProjectionService(Db(settings.projection_store))
    consume_all(settings, via_kafka, stored)
    embedded = ProjectionService(Db(StoreUrl.parse(f"sqlite:///{tmp_path / 'embedded.sqlite'}")))
    EmbeddedRunner(app, embedded).catch_up()

    kafka_tables, embedded_tables = tables(via_kafka), tables(embedded)
    head = app.recorder.max_notification_id()
    # Every view's watermark is the store's head, in both modes (4 partitions interleaved).
    for service in (via_kafka, embedded):
        assert {(r["position"], r["lag"]) for r in service.status(head)} == {(head, 0)}
    assert sum(len(rows) for rows in kafka_tables.values()) > stored // 2
    for table, rows in embedded_tables.items():
        assert kafka_tables[table] == rows, table
    via_kafka.close()
    embedded.close()
    app.close()


def test_the_demo_through_kafka_shows_the_same_views_as_in_embedded_mode(
        tmp_path: Path) -> None:
    settings = kafka_settings(tmp_path, inbound_partitions=1, kafka_partitions=3)
    events = generate()
    app = build_application(settings)
    ingest_through_kafka(settings, app, events)
    via_kafka = ProjectionService(Db(settings.projection_store))
    consume_all(settings, via_kafka, len(app.recorder.select_notifications(None, 10**6)))

    embedded_settings = Settings(data_dir=tmp_path / "embedded")
    embedded_app = build_application(embedded_settings)
    ingest = build_ingest(embedded_app)
    for start in range(0, len(events), 500):
        ingest.submit([Inbound(orjson.dumps(e), parse_structured(e))
                       for e in events[start:start + 500]])
    embedded = ProjectionService(Db(embedded_settings.projection_store))
    EmbeddedRunner(embedded_app, embedded).catch_up()

    kafka_views, embedded_views = views(via_kafka), views(embedded)
    assert len(kafka_views["projects"]["items"]) == 100
    for name, body in embedded_views.items():
        for got, want in zip(kafka_views[name]["items"], body["items"], strict=True):
            assert got == want, name
    for service, application in ((via_kafka, app), (embedded, embedded_app)):
        service.close()
        application.close()


class Consumed:
    """A small demo taken the whole Kafka way and consumed into every view."""

    def __init__(self, tmp_path: Path) -> None:
        self.settings = kafka_settings(tmp_path, inbound_partitions=1)
        self.app = build_application(self.settings)
        ingest_through_kafka(self.settings, self.app, generate(projects=20))
        self.stored = len(self.app.recorder.select_notifications(None, 10**6))
        self.service = ProjectionService(Db(self.settings.projection_store))
        consume_all(self.settings, self.service, self.stored)
        self.views = tables(self.service)

    def close(self) -> None:
        self.service.close()
        self.app.close()


@pytest.fixture
def consumed(tmp_path: Path) -> Iterator[Consumed]:
    c = Consumed(tmp_path)
    yield c
    c.close()


def test_a_republished_stream_changes_no_view(consumed: Consumed) -> None:
    # The relay crashed before saving its position, say: everything goes out again.
    topic = consumed.settings.topic(EVENTS)
    RelayPositions(consumed.app.recorder).set(topic, 0)
    kafka_producer = producer(consumed.settings)
    again = Relay(consumed.app.recorder, kafka_producer, topic)
    while again.step():
        pass
    kafka_producer.close()
    assert again.published == consumed.stored
    # New consumers resume from the stored offsets and read the second copy.
    consume_all(consumed.settings, consumed.service, consumed.stored)
    assert tables(consumed.service) == consumed.views


def test_consumers_resume_from_the_offsets_in_the_view_store_not_from_kafka(
        consumed: Consumed) -> None:
    # The group's Kafka offsets say "done"; the view store is told it has read nothing.
    for projection in consumed.service.projections.values():
        projection.set_tracking({k: 0 for k in projection.tracking() if ":" in k})
    consume_all(consumed.settings, consumed.service, consumed.stored)  # all read again ...
    assert tables(consumed.service) == consumed.views  # ... and skipped: applied once


def test_a_member_stuck_in_a_rebalance_is_replaced_and_its_view_completes(
        consumed: Consumed, tmp_path: Path) -> None:
    # What kafka-python 3.0.12 was seen to do (consumers.membership): a member left in the
    # rebalancing state for good. Simulated on a live member, on a fresh view store.
    service = ProjectionService(Db(StoreUrl.parse(f"sqlite:///{tmp_path / 'again.sqlite'}")))
    consumer = ProjectionConsumer(consumed.settings, service.audit, EventDecoder.for_pmo(),
                                  membership=Membership(limit_s=0.5))
    assert Membership().readable(consumer._consumer)  # the private state is still there
    until(consumer.step, lambda: consumer.applied > 0)
    stuck = consumer._consumer
    stuck._coordinator.state = "<rebalancing>"
    until(consumer.step, lambda: consumer._consumer is not stuck, timeout_s=30)
    until(consumer.step, lambda: service.audit.count() == consumed.stored)
    assert service.audit.waiting() == 0
    rows = tables(service)
    for table in service.audit.tables:
        assert rows[table] == consumed.views[table], table
    consumer.close()
    service.close()
