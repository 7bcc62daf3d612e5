"""Quarantine in Kafka mode, on the real broker: ``pmo consume``'s consumer sets a failing
aggregate aside and goes on; its offsets and position advance; retry after the fix."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from consumers.codec import EventDecoder
from consumers.deadletters import producer
from consumers.projector import ProjectionConsumer
from consumers.relay import Relay
from consumers.topics import EVENTS
from domain import commands as c
from domain.project import Project
from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections.db import Db
from projections.runner import rebuild
from projections.service import ProjectionService
from storage.urls import StoreUrl
from tests.integration.test_projection_views import Publisher, seed, view
from tests.kafka_support import kafka_settings, until
from tests.quarantine_support import POISON, BrokenProjects, rows_of, with_broken_projects

pytestmark = pytest.mark.kafka


def relay_all(settings: Settings, recorder: object) -> None:
    kafka_producer = producer(settings)
    relay = Relay(recorder, kafka_producer, settings.topic(EVENTS))  # type: ignore[arg-type]
    while relay.step():
        pass
    kafka_producer.close()


def cost(key: str, amount: str, reference: str) -> c.RecordCost:
    return c.RecordCost(key, Decimal(amount), "EUR", date(2026, 2, 3), "labour", reference)


def test_a_consumer_quarantines_one_aggregate_and_goes_on(tmp_path: Path) -> None:
    BrokenProjects.fixed = False
    settings = kafka_settings(tmp_path)
    app = build_application(settings)
    publish = Publisher(app)
    seed(publish)
    publish(cost("A", "5.00", POISON), cost("B", "3.00", "b-1"))
    publish(cost("A", "6.00", "a-2"), cost("B", "4.00", "b-2"))
    relay_all(settings, app.recorder)
    stored = app.recorder.max_notification_id() or 0

    service = ProjectionService(Db(settings.projection_store))
    broken = with_broken_projects(service)
    consumer = ProjectionConsumer(settings, broken, EventDecoder.for_pmo())
    until(consumer.step, lambda: consumer.applied >= stored)

    a_id = Project.id_for("A").hex
    [entry] = service.quarantined("projects", None, 10)
    assert (entry.aggregate, entry.key, entry.held, entry.error_class) == (
        a_id, "A", 2, "ValueError")
    assert view(service.project("B"))["actual_cost"] == "7.00"  # the others went on
    a = view(service.project("A"))
    assert (a["actual_cost"], a["quarantined"]) == ("200.00", True)
    status = {s["name"]: s for s in service.status(stored)}
    assert status["projects"]["lag"] == 0 and status["projects"]["quarantined"] == 1

    # A later event of A arrives: held, in order; the consumer does not stop.
    publish(cost("A", "7.00", "a-3"))
    relay_all(settings, app.recorder)
    until(consumer.step, lambda: consumer.applied >= stored + 1)
    assert service.quarantined("projects", None, 10)[0].held == 3

    BrokenProjects.fixed = True
    outcome = service.retry_quarantined("projects", "A", lambda _: None)
    assert (outcome["status"], outcome["applied_events"]) == ("released", 3)
    assert view(service.project("A"))["actual_cost"] == "218.00"
    clean = ProjectionService(Db(StoreUrl.parse(f"sqlite:///{tmp_path / 'clean.sqlite'}")))
    rebuild(app, clean)
    assert rows_of(service, a_id) == rows_of(clean, a_id)

    publish(cost("A", "1.00", "a-4"))  # and A's events go straight in again
    relay_all(settings, app.recorder)
    until(consumer.step, lambda: consumer.applied >= stored + 2)
    assert view(service.project("A"))["actual_cost"] == "219.00"
    consumer.close()
    clean.close()
    service.close()
    app.close()
