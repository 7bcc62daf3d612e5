"""What a careless or hostile client sends to places the rest of the suite reads less:
metric labels it could multiply, the quarantine list's cursor."""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from tests.e2e.conftest import AUDIT, PUB, assert_problem, cloud_event


def test_publisher_chosen_types_and_methods_never_become_metric_labels(
        client: TestClient) -> None:
    for n in range(5):
        client.post("/v1/events", json=cloud_event(f"x.bogus.type-{n}", "S", {}, id_=f"b-{n}"),
                    headers=PUB)
        client.request(f"FOO{n}", "/healthz")
    metrics = client.get("/metrics").text
    assert "x.bogus.type" not in metrics and "FOO" not in metrics
    assert 'pmo_ingest_events_by_type_total{status="invalid",type="unknown"} 5.0' in metrics
    assert 'method="other"' in metrics


def test_an_unreadable_quarantine_cursor_is_422(client: TestClient) -> None:
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode()

    for cursor in (b64(b'["a\\u0000","b"]'), b64(b'{"a": 1, "b": 2}'), b64(b'["a"]'),
                   "%C2%B2", "x" * 5000, b64(b"[1, 2]")):
        answer = client.get("/v1/quarantine", params={"cursor": cursor}, headers=AUDIT)
        assert_problem(answer, 422)
    assert client.get("/v1/quarantine", headers=AUDIT).json() == {"items": [],
                                                                    "next_cursor": None}
