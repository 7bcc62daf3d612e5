"""The official CloudEvents SDK (``cloudevents`` 2.x) against our bindings (CONTRACT 12).

One project's four events travel four ways: HTTP binary, HTTP structured (through the app
on a real SQLite store), Kafka binary and Kafka structured (through ``pmo ingest`` on the
real broker, into the same store). Ids, subjects and sources hold spaces, ``%``, ``/``
and non-ASCII; all four must land on one aggregate, attributes exactly as sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from cloudevents.core.bindings import http, kafka
from cloudevents.core.v1.event import CloudEvent
from fastapi.testclient import TestClient

from consumers.topics import INBOUND
from pmo.bootstrap import build_services
from pmo.settings import Settings
from tests.e2e.conftest import AUDIT, KEYS, PUB, assert_problem, portfolio, running_client
from tests.kafka_support import Worker, kafka_settings, produce, wait_for

# Spaces, '%' (alone, and before hex digits that must not be decoded twice), '/', non-ASCII.
SUBJECT = "PRJ é 50% /x %41 Ä"
SOURCE = "urn:tool/Zürich büro %20"
TIME = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def sdk_event(n: int, type_: str, data: dict[str, Any]) -> CloudEvent:
    return CloudEvent(attributes={
        "id": f"evt {n}/ü %25", "source": SOURCE, "type": type_, "subject": SUBJECT,
        "time": TIME, "datacontenttype": "application/json", "actor": "Renée Ö"}, data=data)


PROPOSED = sdk_event(1, "pmo.project.proposed", {
    "portfolio_id": "PF-1", "name": "Zürich office", "sponsor": "COO",
    "budget_requested": "1000.00", "planned_start": "2026-04-01",
    "planned_finish": "2026-12-15"})
APPROVED = sdk_event(2, "pmo.project.approved", {"approved_budget": "1000.00",
                                                 "approver": "Board"})
STARTED = sdk_event(3, "pmo.project.started", {"started_on": "2026-04-02"})
ON_HOLD = sdk_event(4, "pmo.project.put_on_hold", {"reason": "vendor 100% late"})


def embedded(settings: Settings) -> Settings:
    return settings.model_copy(update={"kafka_bootstrap": None, "api_keys": KEYS})


@pytest.fixture
def kafka_run(tmp_path: Path) -> Iterator[Settings]:
    yield kafka_settings(tmp_path)


def app_client(settings: Settings) -> Iterator[TestClient]:
    with running_client(settings) as client:
        yield client


def post(client: TestClient, message: http.HTTPMessage) -> int:
    response = client.post("/v1/events", content=message.body, headers={**PUB, **message.headers})
    assert response.status_code in (200, 201), response.text
    position: int = response.json()["position"]
    return position


def stored(settings: Settings) -> int:
    services = build_services(embedded(settings))
    try:
        return services.app.recorder.max_notification_id() or 0
    finally:
        services.app.close()


@pytest.mark.kafka
def test_four_bindings_store_one_aggregate_exactly_as_sent(kafka_run: Settings) -> None:
    settings = kafka_run
    # HTTP, both modes, through the app on the SQLite store the Kafka worker uses too.
    clients = app_client(embedded(settings))
    client = next(clients)
    client.post("/v1/events", json=portfolio(), headers=PUB).raise_for_status()
    binary = http.to_binary_event(PROPOSED)
    assert "%" in binary.headers["ce-subject"]  # the SDK encodes: the case of issue 12
    post(client, binary)
    post(client, http.to_structured_event(APPROVED))
    clients.close()
    # Kafka, both modes, through ``pmo ingest`` on the real broker.
    messages = [kafka.to_binary_event(STARTED, key_mapper=lambda e: e.get_subject()),
                kafka.to_structured_event(ON_HOLD, key_mapper=lambda e: e.get_subject())]
    assert messages[0].headers["ce_subject"] == SUBJECT.encode()
    produce(settings.topic(INBOUND),
            [(m.key.encode() if isinstance(m.key, str) else m.key, m.value,
              list(m.headers.items())) for m in messages])
    worker = Worker(settings, settings.data_dir, "ingest")
    try:
        # 6: the portfolio, the project's 4 events and the budget its approval committed
        wait_for(lambda: stored(settings) >= 6, "pmo ingest storing both Kafka messages",
                 workers=[worker])
    finally:
        worker.stop()
    # One aggregate, four events, every attribute as the SDK was given it.
    clients = app_client(embedded(settings))
    client = next(clients)
    # The embedded pipeline starts with the app: read once the trail holds the head.
    head = stored(settings)
    trail = client.get("/v1/audit", params={"aggregate": SUBJECT, "min_position": head},
                       headers=AUDIT)
    assert trail.status_code == 200, trail.text
    items = trail.json()["items"]
    assert [i["type"] for i in items] == [e.get_type() for e in
                                          (PROPOSED, APPROVED, STARTED, ON_HOLD)]
    assert len({i["aggregate_id"] for i in items}) == 1
    assert {(i["source"], i["actor"]) for i in items} == {(SOURCE, "Renée Ö")}
    assert [i["version"] for i in items] == [1, 2, 3, 4]
    projects = client.get("/v1/projects", params={"portfolio": "PF-1", "min_position": head},
                          headers=AUDIT).json()
    assert [(p["project_id"], p["state"]) for p in projects["items"]] == [(SUBJECT, "on_hold")]
    clients.close()


def test_duplicate_detection_sees_the_decoded_id(client: TestClient) -> None:
    client.post("/v1/events", json=portfolio(), headers=PUB).raise_for_status()
    first = post(client, http.to_binary_event(PROPOSED))
    structured = client.post("/v1/events", content=http.to_structured_event(PROPOSED).body,
                             headers={**PUB, "content-type": "application/cloudevents+json"})
    assert structured.status_code == 200, structured.text
    assert structured.json() == {"id": PROPOSED.get_id(), "source": SOURCE,
                                 "status": "duplicate", "position": first}


def test_a_repeated_ce_header_is_a_400_and_logged(client: TestClient) -> None:
    message = http.to_binary_event(PROPOSED)
    headers = [*PUB.items(), *message.headers.items(), ("ce-id", "another")]
    response = client.post("/v1/events", content=message.body, headers=headers)
    body = assert_problem(response, 400)
    assert "ce-id" in body["detail"] and "more than once" in body["detail"]
    rejections = client.get("/v1/rejections", headers=AUDIT).json()["items"]
    assert len(rejections) == 1 and "more than once" in rejections[0]["reason"]
    # Nothing was stored: the project does not exist.
    missing = client.get(f"/v1/projects/{quote(SUBJECT.replace('/', ''))}", headers=AUDIT)
    assert missing.status_code == 404
