"""GET /v1/projects/{id}/history: the stored events of one project, from the event store."""

from __future__ import annotations

from datetime import datetime

import orjson
from fastapi.testclient import TestClient

from tests.e2e.conftest import (
    AUDIT,
    PUB,
    approval,
    assert_problem,
    cloud_event,
    portfolio,
    proposal,
)


def publish(client: TestClient, *events: dict[str, object]) -> list[dict[str, object]]:
    response = client.post("/v1/events", content=orjson.dumps(list(events)),
                           headers={**PUB, "Content-Type": "application/cloudevents-batch+json"})
    results: list[dict[str, object]] = response.json()["results"]
    return results


def test_history_lists_the_projects_events_in_order_with_their_envelope(
        client: TestClient) -> None:
    cost = cloud_event("pmo.project.cost_recorded", "P-1", {
        "amount": "1250.50", "currency": "EUR", "incurred_on": "2026-05-31",
        "category": "labour", "reference": "INV-1"}, id_="cost-1", source="urn:finance:sap")
    started = cloud_event("pmo.project.started", "P-1", {"started_on": "2026-04-02"})
    results = publish(client, portfolio(), proposal("P-1"), approval("P-1"), started, cost)
    assert {r["status"] for r in results} == {"accepted"}
    response = client.get("/v1/projects/P-1/history", headers=AUDIT)
    assert response.status_code == 200
    items = response.json()["items"]
    assert [i["type"] for i in items] == [
        "pmo.project.proposed", "pmo.project.approved", "pmo.project.started",
        "pmo.project.cost_recorded"]
    assert [i["version"] for i in items] == [1, 2, 3, 4]
    assert [i["position"] for i in items] == [r["position"] for r in results[1:]]
    last = items[-1]
    assert last["source"] == "urn:finance:sap" and last["event_id"] == "cost-1"
    assert last["actor"] == "tester" and last["time"] == "2026-03-02T09:30:00+00:00"
    assert datetime.fromisoformat(last["recorded_at"]).utcoffset() is not None
    assert last["data"] == {"amount": "1250.50", "currency": "EUR",
                            "incurred_on": "2026-05-31", "category": "labour",
                            "reference": "INV-1"}
    assert items[0]["data"]["budget_requested"] == "100000.00"
    assert items[0]["data"]["planned_start"] == "2026-04-01"
    assert response.json()["next_cursor"] is None


def test_history_pages_with_a_cursor(client: TestClient) -> None:
    risks = [cloud_event("pmo.project.risk_raised", "P-1", {
        "risk_id": f"R{n}", "title": "late", "probability": "0.5", "impact": 3}, id_=f"risk-{n}")
        for n in range(5)]
    publish(client, portfolio(), proposal("P-1"), approval("P-1"), *risks)
    versions, cursor = [], None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/projects/P-1/history", params=params, headers=AUDIT).json()
        versions += [i["version"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert versions == list(range(1, 8))


def test_history_of_an_unknown_project_is_404(client: TestClient) -> None:
    body = assert_problem(client.get("/v1/projects/NOPE/history", headers=AUDIT), 404)
    assert "NOPE" in body["detail"]


def test_a_bad_cursor_is_422(client: TestClient) -> None:  # CONTRACT section 10
    assert_problem(client.get("/v1/projects/P-1/history?cursor=abc", headers=AUDIT), 422)


def test_a_bad_limit_is_422_problem(client: TestClient) -> None:
    assert_problem(client.get("/v1/projects/P-1/history?limit=0", headers=AUDIT), 422)
