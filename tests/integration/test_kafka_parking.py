"""Parked, not rejected (CONTRACT section 11): a bulk load published across 6 partitions in
any interleaving ends with the views of the same load published in order; an event that
names an aggregate that never comes is rejected once its parking time is over; a parked
event survives the worker (a new one, on the same store, finishes it)."""

from __future__ import annotations

import math
import random
import tempfile
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.workload import event
from consumers.deadletters import producer
from consumers.ingest_worker import InboundWorker, inbound_consumer
from consumers.parking import RUN, Parking, ParkingSink, Retrier
from consumers.pipeline import Pipeline
from consumers.topics import INBOUND, REJECTED
from domain.application import PmoApplication
from ingest.cloudevents import parse_structured
from ingest.service import Inbound, IngestService, Result
from pmo.bootstrap import build_application, build_ingest
from pmo.demo_data import generate
from pmo.settings import Settings
from projections.db import Db
from projections.runner import EmbeddedRunner
from projections.service import ProjectionService
from tests.kafka_support import kafka_settings, read_all, views

pytestmark = pytest.mark.kafka
PROJECTS = 25


def views_of(app: PmoApplication, path: Path) -> dict[str, Any]:
    service = ProjectionService(Db(Settings(
        projection_store_url=f"sqlite:///{path}").projection_store))
    EmbeddedRunner(app, service).catch_up()
    seen = views(service)
    service.close()
    return seen


@pytest.fixture(scope="module")
def in_order() -> Iterator[dict[str, Any]]:
    """The demo load ingested in publishing order (the reference)."""
    with tempfile.TemporaryDirectory() as tmp:
        app = build_application(Settings(data_dir=Path(tmp), _env_file=None))
        ingest = build_ingest(app)
        events = generate(projects=PROJECTS)
        for start in range(0, len(events), 200):
            results = ingest.submit([Inbound(orjson.dumps(e), parse_structured(e))
                                     for e in events[start:start + 200]])
            assert {r.status for r in results} == {"accepted"}
        yield views_of(app, Path(tmp) / "reference.sqlite")
        app.close()


class Ingest:
    """``pmo ingest`` as its worker runs it: poll, store, park; retry what is due."""

    def __init__(self, settings: Settings, app: PmoApplication) -> None:
        self.kafka_producer = producer(settings)
        self.parking = Parking(app.recorder)
        self.sink = ParkingSink(self.kafka_producer, settings, self.parking)
        self.retrier = Retrier(build_ingest(app), self.sink, self.parking,
                               settings.park_seconds, settings.max_body_bytes)
        self.consumer = inbound_consumer(settings)
        self.worker = InboundWorker(settings, build_ingest(app, self.sink), self.sink,
                                    self.consumer)
        self.pipeline = Pipeline(settings, app.recorder)

    def until_done(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.pipeline.status()["inbound"] > 0:  # inbound counts the parked ones
            assert time.monotonic() < deadline, (self.pipeline.status(), [
                (p.subject, p.reason, p.attempts) for p, _ in self.parking.rows(5)])
            self.worker.step()
            self.retrier.step()

    def close(self) -> None:
        self.consumer.close(autocommit=False)
        self.kafka_producer.close()
        self.pipeline.close()


def publish_interleaved(settings: Settings, events: list[dict[str, Any]], seed: int) -> None:
    """Each subject's events in their order, the subjects merged at random."""
    queues: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        queues.setdefault(e["subject"], []).append(e)
    rng = random.Random(seed)
    kafka_producer = producer(settings)
    subjects = list(queues)
    while subjects:
        subject = rng.choice(subjects)
        e = queues[subject].pop(0)
        kafka_producer.send(settings.topic(INBOUND), key=subject.encode(),
                            value=orjson.dumps(e))
        if not queues[subject]:
            subjects.remove(subject)
    kafka_producer.flush()
    kafka_producer.close()


@settings(max_examples=3, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_a_bulk_load_in_any_interleaving_ends_with_the_in_order_views(
        in_order: dict[str, Any], tmp_path: Path, seed: int) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as tmp:
        settings_ = kafka_settings(Path(tmp), kafka_partitions=6, park_seconds=120)
        app = build_application(settings_)
        publish_interleaved(settings_, generate(projects=PROJECTS), seed)
        ingest = Ingest(settings_, app)
        ingest.until_done()
        assert ingest.sink.parked > 0  # the interleaving did put children first
        assert ingest.retrier.rejected == 0 and ingest.sink.sent["rejected"] == 0
        got = views_of(app, Path(tmp) / "views.sqlite")
        for name, body in in_order.items():  # field by field, to say which differs
            for mine, want in zip(got[name]["items"], body["items"], strict=True):
                differ = {k for k in mine.keys() | want.keys() if mine.get(k) != want.get(k)}
                # The one known difference (docs/kafka.md): a supportive or controlling PMO
                # records any manager id as given, so an assignment that overtakes the
                # manager's registration is not on the manager aggregate: a lower version.
                # Its projects, active_projects and utilisation come from the projects'
                # figures, so they agree in any interleaving.
                if name == "managers":
                    differ.discard("version")
                assert differ == set(), (name, {k: (mine.get(k), want.get(k)) for k in differ})
        ingest.close()
        app.close()


def test_an_event_whose_parent_never_comes_is_rejected_after_its_time(tmp_path: Path) -> None:
    settings_ = kafka_settings(tmp_path, park_seconds=1.5)
    app = build_application(settings_)
    orphan = event(1, "pmo.project.proposed", "P-ORPHAN", {
        "portfolio_id": "PF-NEVER", "name": "Orphan", "sponsor": "cfo",
        "budget_requested": "1000", "planned_start": "2026-01-01",
        "planned_finish": "2026-06-30"})
    kafka_producer = producer(settings_)
    kafka_producer.send(settings_.topic(INBOUND), key=b"P-ORPHAN", value=orjson.dumps(orphan))
    kafka_producer.flush()
    first = Ingest(settings_, app)
    while first.sink.parked == 0:
        first.worker.step()
    assert first.parking.parked(orphan["source"], orphan["id"]) == "unknown portfolio 'PF-NEVER'"
    first.consumer.close(autocommit=False)  # this worker is gone; its parked event is not
    second = Ingest(settings_, app)
    assert second.parking.count() == 1
    started = time.monotonic()
    second.until_done(timeout_s=30)
    assert time.monotonic() - started >= 1.0  # retried for its parking time first
    assert second.retrier.rejected == 1 and second.parking.count() == 0
    letters = read_all(settings_.topic(REJECTED), 1)
    assert len(letters) == 1 and orjson.loads(letters[0].value)["id"] == orphan["id"]
    assert dict(letters[0].headers)["pmo_reason"] == b"unknown portfolio 'PF-NEVER'"
    assert app.recorder.max_notification_id() in (None, 0)
    second.close()
    first.kafka_producer.close()
    first.pipeline.close()
    kafka_producer.close()
    app.close()


class CountedIngest(IngestService):
    """The real ingest service; how many transactions it was asked for is counted."""

    submits = 0

    def submit(self, messages: Sequence[Inbound]) -> list[Result]:
        self.submits += 1
        return super().submit(messages)


def test_events_parked_behind_a_late_parent_go_through_in_runs(tmp_path: Path) -> None:
    settings_ = kafka_settings(tmp_path, park_seconds=120)
    app = build_application(settings_)
    kafka_producer = producer(settings_)
    parking = Parking(app.recorder)
    sink = ParkingSink(kafka_producer, settings_, parking)
    ingest = CountedIngest(app)
    retrier = Retrier(ingest, sink, parking, settings_.park_seconds, settings_.max_body_bytes)
    costs = 1200

    def inbound(events: list[dict[str, Any]]) -> list[Inbound]:
        return [Inbound(orjson.dumps(e), parse_structured(e)) for e in events]

    project = [event(1, "pmo.project.proposed", "P-1", {
        "portfolio_id": "PF-LATE", "name": "P", "sponsor": "cfo", "budget_requested": "5000",
        "planned_start": "2026-01-01", "planned_finish": "2026-06-30"}),
        event(2, "pmo.project.approved", "P-1", {"approved_budget": "5000",
                                                 "approver": "board"}),
        event(3, "pmo.project.started", "P-1", {"started_on": "2026-01-02"})] + [
        event(4 + n, "pmo.project.cost_recorded", "P-1", {
            "amount": "1.25", "currency": "EUR", "incurred_on": "2026-02-01",
            "category": "labour", "reference": f"inv-{n}"}) for n in range(costs)]
    try:
        build_ingest(app, sink).submit(inbound(project))
        assert parking.count() == len(project)  # all behind the proposal
        time.sleep(0.25)
        assert retrier.step() == 1 and retrier.stored == 0  # the head alone, still waiting
        assert not parking.anything_due()  # those behind it are due no sooner than it
        build_ingest(app, sink).submit(inbound([event(0, "pmo.portfolio.opened", "PF-LATE", {
            "name": "Late", "pmo_type": "controlling", "currency": "EUR",
            "budget_envelope": "100000", "owner": "o"})]))
        time.sleep(0.5)
        before = ingest.submits
        retrier.step()  # one pass: the head, then the rest in runs
        assert retrier.stored == len(project) and parking.count() == 0
        assert ingest.submits - before == 1 + math.ceil((len(project) - 1) / RUN)
        assert sink.sent == {"dlq": 0, "rejected": 0}
        got = views_of(app, tmp_path / "views.sqlite")["projects"]["items"]
        assert [(p["project_id"], p["state"], Decimal(p["actual_cost"])) for p in got] == [
            ("P-1", "active", Decimal("1.25") * costs)]
    finally:
        kafka_producer.close()
        app.close()
