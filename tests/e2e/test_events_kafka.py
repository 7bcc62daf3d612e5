"""POST /v1/events in Kafka mode: events are queued to ``pmo.inbound`` (202), bad ones refused.

Real broker (scripts/kafka-local.sh), a fresh topic prefix per test; never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from consumers.topics import INBOUND
from pmo.bootstrap import build_services
from pmo.settings import Settings
from tests.e2e.conftest import KEYS, PUB, assert_problem, portfolio, proposal
from tests.kafka_support import kafka_settings, read_all

pytestmark = pytest.mark.kafka


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return kafka_settings(tmp_path, api_keys=KEYS)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    services = build_services(settings)
    assert services.runner is None  # the workers feed the views in Kafka mode
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        yield client
    services.ingest.close()  # type: ignore[attr-defined]


def test_one_event_is_queued_with_202(client: TestClient, settings: Settings) -> None:
    response = client.post("/v1/events", json=portfolio(), headers=PUB)
    assert response.status_code == 202, response.text
    assert response.json() == {"id": "open-PF-1", "source": "urn:test", "status": "queued",
                               "position": None}
    [message] = read_all(settings.topic(INBOUND), 1)
    assert message.key == b"PF-1"
    assert orjson.loads(message.value)["id"] == "open-PF-1"


def test_a_batch_is_queued_in_order_and_invalid_entries_refused(
        client: TestClient, settings: Settings) -> None:
    bad = proposal("P-2")
    bad["data"]["budget_requested"] = 12
    response = client.post("/v1/events", content=orjson.dumps([portfolio(), proposal("P-1"),
                                                               bad]), headers=PUB)
    assert [r["status"] for r in response.json()["results"]] == ["queued", "queued", "invalid"]
    assert response.json()["results"][2]["code"] == "invalid-event-data"
    queued = read_all(settings.topic(INBOUND), 2)
    assert sorted(orjson.loads(m.value)["id"] for m in queued) == ["open-PF-1", "propose-P-1"]


def test_malformed_and_invalid_events_are_still_400_and_422(client: TestClient) -> None:
    assert_problem(client.post("/v1/events", content=b"{oops", headers=PUB), 400)
    event = portfolio()
    event["data"]["pmo_type"] = "anarchic"
    assert_problem(client.post("/v1/events", json=event, headers=PUB), 422)


def test_readiness_includes_the_broker(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"]["broker"] == "ok"


def test_readiness_fails_when_the_broker_is_unreachable(tmp_path: Path,
                                                        settings: Settings) -> None:
    services = build_services(settings)
    gone = services.settings.model_copy(update={"kafka_bootstrap": "127.0.0.1:1"})
    services.settings = gone
    try:
        with TestClient(create_app(services)) as client:
            body = assert_problem(client.get("/readyz"), 503)
            assert "broker" in body["detail"]
    finally:
        services.ingest.close()  # type: ignore[attr-defined]
