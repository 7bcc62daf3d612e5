"""The cached-view fast path (api.fastpath) answers as the route does, and never without a role."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.e2e.conftest import AUDIT, PUB, VIEW, assert_problem, auth, portfolio

URL = "/v1/portfolios/PF-1"


def warm(client: TestClient) -> bytes:
    assert client.post("/v1/events", json=portfolio(), headers=PUB).status_code == 201
    first = client.get(URL, headers=VIEW)  # built by the route, then cached
    assert first.status_code == 200, first.text
    return first.content


def test_a_cached_view_is_the_same_bytes_as_the_route_built(client: TestClient) -> None:
    built = warm(client)
    again = client.get(URL, headers=VIEW)
    assert again.status_code == 200
    assert again.content == built
    assert again.headers["content-type"] == "application/json"
    assert again.json()["portfolio_id"] == "PF-1"


def test_a_cached_view_still_needs_a_viewer_key(client: TestClient) -> None:
    warm(client)
    assert_problem(client.get(URL), 401)
    assert_problem(client.get(URL, headers=auth("nope")), 401)
    assert_problem(client.get(URL, headers=PUB), 403)
    assert client.get(URL, headers=AUDIT).status_code == 200  # auditor implies viewer


def test_a_view_changes_as_soon_as_an_event_is_stored(client: TestClient) -> None:
    warm(client)
    objective = {"specversion": "1.0", "id": "obj-1", "source": "urn:test",
                 "type": "pmo.portfolio.objective_set", "subject": "PF-1",
                 "time": "2026-03-02T09:30:00Z",
                 "data": {"objective_id": "O-1", "title": "Grow", "weight": "0.5"}}
    assert client.post("/v1/events", json=objective, headers=PUB).status_code == 201
    objectives = client.get(URL, headers=VIEW).json()["objectives"]
    assert [o["objective_id"] for o in objectives] == ["O-1"]


def test_as_of_and_unknown_ids_go_to_the_route(client: TestClient) -> None:
    warm(client)
    assert_problem(client.get(URL + "?as_of=2026-01-01T00:00:00Z", headers=VIEW), 403)
    assert_problem(client.get("/v1/portfolios/PF-404", headers=VIEW), 404)


def test_cached_answers_are_counted_under_the_route(client: TestClient) -> None:
    warm(client)
    for _ in range(3):
        client.get(URL, headers=VIEW)
    metrics = client.get("/metrics").text
    assert ('pmo_http_requests_total{method="GET",route="/v1/portfolios/{portfolio_id}",'
            'status="200"} 4.0') in metrics
