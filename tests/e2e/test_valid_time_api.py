"""``?valid_at=`` over HTTP: roles, validation, the worked example of docs/api.md."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from api.deps import Services
from tests.e2e.conftest import (
    AUDIT,
    VIEW,
    approval,
    assert_problem,
    cost,
    portfolio,
    proposal,
    publish_and_wait,
)


def at(event: dict[str, Any], time: str) -> dict[str, Any]:
    return {**event, "time": time}


publish = publish_and_wait


def test_june_as_reported_on_july_1_and_as_known_now(client: TestClient,
                                                     services: Services) -> None:
    june = "2026-06-10T09:00:00Z"
    july_1 = publish(client, services, at(portfolio(), june), at(proposal("X1"), june),
                     at(approval("X1"), june), at(cost("X1", "100.00", 1), june))
    publish(client, services, at(cost("X1", "40.00", 2), "2026-06-20T00:00:00Z"))
    june_30 = {"valid_at": "2026-06-30T23:59:59Z"}
    reported = {**june_30, "as_of": july_1.isoformat()}
    for path in ("/v1/projects/X1", "/v1/portfolios/PF-1"):
        now = client.get(path, params=june_30, headers=VIEW)
        assert now.status_code == 200, now.text
        assert now.json()["actual_cost"] == "140.00"
        then = client.get(path, params=reported, headers=AUDIT)
        assert then.status_code == 200, then.text
        assert then.json()["actual_cost"] == "100.00"
        # as_of stays auditor's, valid_at alone is a viewer's.
        assert_problem(client.get(path, params=reported, headers=VIEW), 403)
    listed = client.get("/v1/projects", params=june_30, headers=VIEW).json()
    assert [(p["project_id"], p["actual_cost"]) for p in listed["items"]] == [("X1", "140.00")]
    assert client.get("/v1/projects", params={"valid_at": "2026-06-01T00:00:00Z"},
                      headers=VIEW).json()["items"] == []
    assert_problem(client.get("/v1/projects/X1", params={"valid_at": "2026-06-01T00:00:00Z"},
                              headers=VIEW), 404)
    assert_problem(client.get("/v1/projects", params={**june_30, "sort": "planned_finish"},
                              headers=VIEW), 422)
    by_cost = client.get("/v1/projects", params={**june_30, "sort": "-actual_cost"},
                         headers=VIEW)
    assert [p["project_id"] for p in by_cost.json()["items"]] == ["X1"]
    for bad in ("2026-06-30", "2026-06-30T00:00:00", "9999-12-31T00:00:00Z", "x"):
        assert_problem(client.get("/v1/portfolios/PF-1", params={"valid_at": bad},
                                  headers=VIEW), 422)


def test_openapi_declares_valid_at_on_the_view_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/portfolios/{portfolio_id}", "/v1/projects/{project_id}",
                 "/v1/programs/{program_id}", "/v1/managers/{manager_id}", "/v1/projects"):
        names = {p["name"] for p in paths[path]["get"].get("parameters", [])
                 if p["in"] == "query"}
        assert "valid_at" in names, path


def test_restatements_over_http(client: TestClient, services: Services) -> None:
    june = "2026-06-10T09:00:00Z"
    july_1 = publish(client, services, at(portfolio(), june), at(proposal("X1"), june),
                     at(approval("X1"), june), at(cost("X1", "100.00", 1), june))
    late = at(cost("X1", "40.00", 2), "2026-06-20T00:00:00Z")
    publish(client, services, late)
    params = {"valid_at": "2026-06-30T23:59:59Z", "reported_at": july_1.isoformat()}
    path = "/v1/portfolios/PF-1/restatements"
    assert_problem(client.get(path, params=params, headers=VIEW), 403)
    answer = client.get(path, params=params, headers=AUDIT)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["portfolio"]["moved"][0] == "actual_cost"
    [x1] = body["projects"]
    assert (x1["reported"]["actual_cost"], x1["now"]["actual_cost"]) == ("100.00", "140.00")
    assert [(e["type"], e["source"], e["id"]) for e in x1["events"]] == [
        (late["type"], late["source"], late["id"])]
    assert_problem(client.get(path, params={**params, "reported_at": "2026-07-01"},
                              headers=AUDIT), 422)
    assert_problem(client.get("/v1/portfolios/nope/restatements", params=params,
                              headers=AUDIT), 404)
    # A report "made" in the future could still change: refused, as a future as_of is.
    future = client.get(path, params={**params, "reported_at": "2999-01-01T00:00:00Z"},
                        headers=AUDIT)
    assert "reported_at lies in the future" in assert_problem(future, 422)["detail"]
