"""A stable as-of in Kafka mode (CONTRACT section 11): two consumers of each view split the
partitions; one of them pauses; ``as_of`` asked again and again while it is paused and
after it resumes never gives two different answers for one instant."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from consumers.codec import EventDecoder
from consumers.deadletters import producer
from consumers.projector import ProjectionConsumer
from consumers.relay import Relay
from consumers.topics import EVENTS
from ingest.cloudevents import parse_structured
from ingest.service import Inbound
from pmo.bootstrap import build_ingest, build_services
from pmo.demo_data import generate
from projections.db import Db
from projections.log import read_log
from projections.service import ProjectionService
from tests.kafka_support import kafka_settings, until

pytestmark = pytest.mark.kafka
KEY = {"Authorization": "Bearer k"}


def test_as_of_answers_never_change_while_a_consumer_pauses(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("api.consistency.WAIT_S", 0.3)  # a 503 sooner: the test stays short
    settings = kafka_settings(tmp_path, kafka_partitions=4,
                              api_keys={"k": ["auditor", "publisher"]})
    services = build_services(settings)
    app = services.app
    events = generate(projects=12)
    ingest = build_ingest(app)
    instants = []
    for start in range(0, len(events), len(events) // 4 + 1):  # recorded over a few moments
        ingest.submit([Inbound(orjson.dumps(e), parse_structured(e))
                       for e in events[start:start + len(events) // 4 + 1]])
        instants.append(read_log(app, 0, 10**6)[-1].recorded_at.isoformat())
        time.sleep(0.05)
    portfolios = sorted({e["subject"] for e in events if e["type"] == "pmo.portfolio.opened"})

    decoder = EventDecoder.for_pmo()
    running, paused = [], []
    for name in ("portfolios", "projects"):  # two "processes" of each, one group each
        pair = [ProjectionConsumer(settings, ProjectionService(Db(settings.projection_store))
                                   .projections[name], decoder) for _ in range(2)]
        until(lambda p=pair: [c.step() for c in p],  # type: ignore[misc]
              lambda p=pair: all(c._consumer.assignment() for c in p)
              and sum(len(c._consumer.assignment()) for c in p) == 4,
              timeout_s=180)  # two members joining in turns from one thread: slow when busy
        running.append(pair[0])
        paused.append(pair[1])
    # Only now the events go out: the paused ones never see theirs until they resume.
    kafka_producer = producer(settings)
    relay = Relay(app.recorder, kafka_producer, settings.topic(EVENTS))
    while relay.step():
        pass
    kafka_producer.close()
    stored = relay.position
    for c in running:
        until(c.step, lambda c=c: c.applied > 0)  # type: ignore[misc]
        for _ in range(10):
            c.step()

    answers: dict[tuple[str, str], set[str]] = {}
    refused = 0

    def ask(client: TestClient, chosen: list[str]) -> None:
        nonlocal refused
        for at in instants:
            for pf in chosen:
                response = client.get(f"/v1/portfolios/{pf}", params={"as_of": at}, headers=KEY)
                assert response.status_code in (200, 503), response.text
                if response.status_code == 503:
                    refused += 1
                    assert response.headers["Retry-After"]
                else:
                    answers.setdefault((at, pf), set()).add(response.text)

    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        ask(client, portfolios)
        ask(client, portfolios)
        assert refused > 0  # the paused partitions hold events of these instants
        before = dict(answers)
        for c in paused + running:  # resume: everything comes in
            until(lambda c=c: [c.step()], lambda c=c: _done(c, stored))  # type: ignore[misc]
        ask(client, portfolios)
        ask(client, portfolios)
    assert set(answers) == {(at, pf) for at in instants for pf in portfolios}
    for key, seen in answers.items():
        assert len(seen) == 1, (key, seen)  # one answer per instant, before and after
    assert before.keys() <= answers.keys()
    for c in paused + running:
        c.close()
    services.projections.close()
    app.close()


def _done(consumer: ProjectionConsumer, stored: int) -> bool:
    tracking: dict[str, Any] = consumer.projection.tracking()
    return int(tracking.get("_position", 0)) >= stored
