"""Reads that wait for the views (CONTRACT section 11), in embedded mode: ``min_position``
and ``as_of`` answer only once the views hold what they ask for, else 503 + Retry-After."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from api.deps import Services
from tests.e2e.conftest import AUDIT, PUB, VIEW, approval, assert_problem, cost, portfolio, proposal


def test_min_position_waits_for_the_views_then_shows_the_write(
        client: TestClient, services: Services) -> None:
    assert client.post("/v1/events", json=[portfolio(), proposal("P-1"), approval("P-1")],
                       headers=PUB).status_code == 200
    assert services.runner is not None
    services.runner.stop()  # the views stop here
    posted = client.post("/v1/events", json=cost("P-1", "250.50", 1), headers=PUB).json()
    position = posted["position"]
    started = time.monotonic()
    late = client.get(f"/v1/projects/P-1?min_position={position}", headers=VIEW)
    assert time.monotonic() - started >= 1.9  # it waited before giving up
    body = assert_problem(late, 503)
    assert late.headers["Retry-After"] == "1"
    assert body["watermark"] == position - 1 and body["views"] == ["projects"]
    portfolio_late = client.get(f"/v1/portfolios/PF-1?min_position={position}", headers=VIEW)
    assert assert_problem(portfolio_late, 503)["views"] == ["portfolios", "projects"]
    # Without min_position the (stale) view answers at once.
    assert client.get("/v1/projects/P-1", headers=VIEW).json()["actual_cost"] == "0"
    services.runner.start()
    for _ in range(5):
        read = client.get(f"/v1/projects/P-1?min_position={position}", headers=VIEW)
        assert read.status_code == 200 and read.json()["actual_cost"] == "250.50"
    assert client.get("/v1/portfolios?min_position=0", headers=VIEW).status_code == 200
    assert_problem(client.get("/v1/projects/P-1?min_position=-1", headers=VIEW), 422)


def test_as_of_is_answered_only_once_the_views_hold_everything_recorded_by_then(
        client: TestClient, services: Services) -> None:
    assert client.post("/v1/events", json=[portfolio(), proposal("P-1"), approval("P-1")],
                       headers=PUB).status_code == 200
    assert services.runner is not None
    services.runner.stop()
    for n in range(3):
        client.post("/v1/events", json=cost("P-1", "100.00", n), headers=PUB)
    time.sleep(1.1)  # the instant is settled (api.consistency.SETTLE_S)
    at = datetime.now(UTC).isoformat()
    early = client.get("/v1/portfolios/PF-1", params={"as_of": at}, headers=AUDIT)
    assert assert_problem(early, 503)["views"] == ["portfolios", "projects"]
    assert early.headers["Retry-After"] == "1"
    services.runner.start()
    answers = {client.get("/v1/portfolios/PF-1", params={"as_of": at}, headers=AUDIT).text
               for _ in range(5)}
    assert len(answers) == 1
    # An instant before the unapplied events was answerable all along.
    before = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert client.get("/v1/projects/P-1", params={"as_of": before},
                      headers=AUDIT).status_code == 404


def test_a_receipt_says_what_became_of_each_message(client: TestClient) -> None:
    client.post("/v1/events", json=[portfolio(), proposal("P-1")], headers=PUB)
    refused = approval("P-404")
    assert client.post("/v1/events", json=refused, headers=PUB).status_code == 409
    invalid = {**cost("P-1", "1.00", 9), "type": "pmo.nothing", "id": "bad-1"}
    assert client.post("/v1/events", json=invalid, headers=PUB).status_code in (400, 422)

    def receipt(event: dict[str, object], key: dict[str, str] = PUB) -> dict[str, object]:
        response = client.get("/v1/receipts", params={"source": str(event["source"]),
                                                      "id": str(event["id"])}, headers=key)
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    stored = receipt(proposal("P-1"), AUDIT)
    assert stored["status"] == "stored" and isinstance(stored["position"], int)
    read = client.get(f"/v1/projects/P-1?min_position={stored['position']}", headers=VIEW)
    assert read.status_code == 200 and read.json()["state"] == "proposed"
    rejected = receipt(refused)
    assert rejected["status"] == "rejected" and "P-404" in str(rejected["reason"])
    assert receipt(invalid)["status"] == "dead-lettered"
    assert receipt(cost("P-1", "1.00", 77)) == {"status": "pending"}
    assert_problem(client.get("/v1/receipts", params={"source": "s", "id": "i"},
                              headers=VIEW), 403)
    assert_problem(client.get("/v1/receipts", params={"source": "s"}, headers=PUB), 422)


def test_only_a_caller_who_may_ask_as_of_waits_for_it(
        client: TestClient, services: Services) -> None:
    assert client.post("/v1/events", json=[portfolio(), proposal("P-1")],
                       headers=PUB).status_code == 200
    assert services.runner is not None
    services.runner.stop()  # the views are behind from here on
    client.post("/v1/events", json=approval("P-1"), headers=PUB)
    at = datetime.now(UTC).isoformat()
    started = time.monotonic()
    # A viewer may not ask as_of: the route's 403, at once, never a wait then a 503.
    assert_problem(client.get("/v1/projects/P-1", params={"as_of": at}, headers=VIEW), 403)
    # A route without as_of ignores it: the (stale) answer comes at once.
    listed = client.get("/v1/rejections", params={"as_of": at}, headers=AUDIT)
    assert listed.status_code == 200
    assert time.monotonic() - started < 1.5
    assert_problem(client.get("/v1/projects/P-1", params={"as_of": at}, headers=AUDIT), 503)
