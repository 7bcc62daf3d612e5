"""A blue/green rebuild in Kafka mode, on the real broker: the projection's consumer builds
the next version from the start of ``pmo.events`` beside the live one, which it keeps
feeding, and swaps it in; reads see the old or the new version; nothing is published again;
the result equals a clean rebuild from the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from bench.bench_replay import history, load
from consumers import rebuild as kafka_rebuild
from consumers.codec import EventDecoder
from consumers.projector import ProjectionConsumer
from consumers.topics import EVENTS, client_options
from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections.db import Db
from projections.runner import rebuild
from projections.service import ProjectionService
from storage.urls import StoreUrl
from tests.integration.test_bluegreen import assert_each_before_or_after, damage, reads
from tests.integration.test_kafka_quarantine import cost, relay_all
from tests.integration.test_projection_views import Publisher
from tests.kafka_support import kafka_settings, until

pytestmark = pytest.mark.kafka


def published(settings: Settings) -> int:
    """Messages on pmo.events, all partitions."""
    consumer = KafkaConsumer(**client_options(settings))
    topic = settings.topic(EVENTS)
    tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    total = sum(consumer.end_offsets(tps).values())
    consumer.close()
    return total


def table_rows(service: ProjectionService) -> dict[str, list[Any]]:
    return {t: sorted(service.db.query(f"SELECT * FROM {t}"), key=repr)
            for t in service.projects.tables}


def test_a_consumer_rebuilds_from_pmo_events_and_swaps(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka_rebuild, "MAX_RECORDS", 200)  # a rebuild of many steps
    settings = kafka_settings(tmp_path)
    app = build_application(settings)
    load(app, history(40, 20))
    relay_all(settings, app.recorder)
    stored = app.recorder.max_notification_id() or 0
    service = ProjectionService(Db(settings.projection_store))
    consumer = ProjectionConsumer(settings, service.projects, EventDecoder.for_pmo())
    until(consumer.step, lambda: consumer.applied >= stored)
    on_topic = published(settings)
    after = reads(service)
    damage(service)
    before = reads(service)
    assert before != after

    service.request_rebuild("projects")
    answers: list[dict[str, Any]] = []
    seen: list[dict[str, Any]] = []

    def step() -> None:
        consumer.step()
        answers.append(reads(service))
        seen.append(next(r for r in service.status(stored) if r["name"] == "projects"))

    until(step, lambda: bool(seen) and seen[-1]["state"] == "live")
    assert_each_before_or_after(answers, before, after)
    assert answers[-1] == after and seen[-1]["state"] == "live"
    rebuilding = [r for r in seen if r["state"] == "rebuilding"]
    assert len(rebuilding) > 3 and rebuilding[-2]["rebuild"]["position"] > 0
    assert published(settings) == on_topic  # read again, never published again

    # A second rebuild while events keep coming: the live consumer applies them meanwhile,
    # the next version reads up to the live offsets; the swap loses none.
    service.request_rebuild("projects")
    publish = Publisher(app)
    until(step, lambda: seen[-1]["state"] == "rebuilding" and seen[-1]["rebuild"]["position"] > 0)
    publish(cost("X1", "10.00", "during-1"), cost("X2", "11.00", "during-2"))
    relay_all(settings, app.recorder)
    until(step, lambda: seen[-1]["state"] == "live")
    publish(cost("X1", "12.00", "after-1"))
    relay_all(settings, app.recorder)
    until(step, lambda: consumer.applied >= (app.recorder.max_notification_id() or 0))
    consumer.close()
    clean = ProjectionService(Db(StoreUrl.parse(f"sqlite:///{tmp_path / 'clean.sqlite'}")))
    rebuild(app, clean)
    assert table_rows(service) == table_rows(clean)
    assert published(settings) == on_topic + 3
    clean.close()
    service.close()
    app.close()
