"""The read side over HTTP: views, lists, as-of, audit, rejections, projection status, roles."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.e2e.conftest import (
    AUDIT,
    PUB,
    VIEW,
    approval,
    assert_problem,
    auth,
    cloud_event,
    cost,
    portfolio,
    proposal,
)

ADMIN = auth("admin-key")


def publish(client: TestClient, *events: dict[str, Any]) -> None:
    response = client.post("/v1/events", json=list(events), headers=PUB)
    assert response.status_code == 200, response.text
    assert all(r["status"] in ("accepted", "duplicate") for r in response.json()["results"])


@pytest.fixture
def loaded(client: TestClient) -> TestClient:
    publish(client, portfolio(), proposal("X1"), approval("X1"), proposal("X2"),
            cloud_event("pmo.manager.registered", "M1", {"name": "Mia", "capacity": 2},
                        id_="reg-M1"),
            cloud_event("pmo.program.launched", "PG", {"portfolio_id": "PF-1",
                                                       "name": "Platform"}, id_="launch-PG"),
            cloud_event("pmo.project.manager_assigned", "X1", {"manager_id": "M1"},
                        id_="assign-X1"),
            cloud_event("pmo.project.started", "X1", {"started_on": "2026-04-02"},
                        id_="start-X1"),
            cost("X1", "1250.50", 1))
    return client


def test_views_answer_read_your_writes(loaded: TestClient) -> None:
    project = loaded.get("/v1/projects/X1", headers=VIEW)
    assert project.status_code == 200 and project.headers["content-type"] == "application/json"
    body = project.json()
    assert (body["state"], body["actual_cost"], body["manager_id"]) == ("active", "1250.50", "M1")
    assert set(body) >= {"project_id", "portfolio_id", "program_id", "name", "sponsor",
                         "priority", "budget_requested", "approved_budget",
                         "estimate_at_completion", "planned_start", "planned_finish",
                         "baseline_finish", "started_on", "finished_on", "health",
                         "percent_complete", "milestones", "open_risks", "version", "cpi",
                         "spi"}
    folio = loaded.get("/v1/portfolios/PF-1", headers=VIEW).json()
    assert folio["approved_budget"] == "100000.00" and folio["actual_cost"] == "1250.50"
    assert folio["projects_by_state"]["proposed"] == 1
    assert set(folio["projects_by_health"]) == {"green", "amber", "red", "unknown"}
    listed = loaded.get("/v1/portfolios", headers=VIEW).json()
    assert [p["portfolio_id"] for p in listed["items"]] == ["PF-1"]
    assert listed["next_cursor"] is None
    manager = loaded.get("/v1/managers/M1", headers=VIEW).json()
    assert (manager["active_projects"], manager["projects"], manager["in_pool"]) == (
        1, ["X1"], True)
    assert loaded.get("/v1/managers", headers=VIEW).json()["items"][0]["manager_id"] == "M1"
    assert loaded.get("/v1/programs/PG", headers=VIEW).json()["projects"] == []


def test_project_list_filters_and_pages(loaded: TestClient) -> None:
    active = loaded.get("/v1/projects", params={"state": "active"}, headers=VIEW).json()
    assert [p["project_id"] for p in active["items"]] == ["X1"]
    first = loaded.get("/v1/projects", params={"limit": 1, "sort": "-project_id"},
                       headers=VIEW).json()
    assert [p["project_id"] for p in first["items"]] == ["X2"]
    rest = loaded.get("/v1/projects", params={"limit": 1, "sort": "-project_id",
                                              "cursor": first["next_cursor"]},
                      headers=VIEW).json()
    assert [p["project_id"] for p in rest["items"]] == ["X1"]
    assert_problem(loaded.get("/v1/projects", params={"sort": "colour"}, headers=VIEW), 422)
    assert_problem(loaded.get("/v1/projects", params={"state": "dreaming"}, headers=VIEW), 422)
    assert_problem(loaded.get("/v1/projects", params={"cursor": "!!"}, headers=VIEW), 422)


def test_unknown_ids_are_404_problems(loaded: TestClient) -> None:
    for path in ("/v1/projects/nope", "/v1/portfolios/nope", "/v1/programs/nope",
                 "/v1/managers/nope"):
        assert_problem(loaded.get(path, headers=VIEW), 404)


def test_as_of_needs_the_auditor_and_shows_the_past(loaded: TestClient) -> None:
    then = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    publish(loaded, cost("X1", "10", 2))
    assert loaded.get("/v1/projects/X1", headers=VIEW).json()["actual_cost"] == "1260.50"
    assert_problem(loaded.get("/v1/projects/X1", params={"as_of": then}, headers=VIEW), 403)
    past = loaded.get("/v1/projects/X1", params={"as_of": then}, headers=AUDIT)
    assert past.status_code == 200 and past.json()["actual_cost"] == "1250.50"
    for path in ("/v1/portfolios/PF-1", "/v1/managers/M1", "/v1/programs/PG"):
        assert loaded.get(path, params={"as_of": then}, headers=AUDIT).status_code == 200
    assert loaded.get("/v1/portfolios/PF-1", params={"as_of": then},
                      headers=AUDIT).json()["actual_cost"] == "1250.50"
    assert_problem(loaded.get("/v1/projects/X1", params={"as_of": "2000-01-01T00:00:00Z"},
                              headers=AUDIT), 404)
    assert_problem(loaded.get("/v1/projects/X1", params={"as_of": "yesterday"},
                              headers=AUDIT), 422)
    assert_problem(loaded.get("/v1/projects/X1", params={"as_of": "2026-01-01T00:00:00"},
                              headers=AUDIT), 422)


def test_audit_trail_verify_and_export(loaded: TestClient) -> None:
    trail = loaded.get("/v1/audit", params={"aggregate": "X1", "limit": 2}, headers=AUDIT)
    assert trail.status_code == 200
    page = trail.json()
    assert [e["version"] for e in page["items"]] == [1, 2] and page["next_cursor"]
    assert set(page["items"][0]) >= {"position", "aggregate_id", "version", "type", "time",
                                     "recorded_at", "actor", "source", "hash", "prev_hash"}
    more = loaded.get("/v1/audit", params={"aggregate": "X1", "cursor": page["next_cursor"]},
                      headers=AUDIT).json()
    assert more["items"][0]["version"] == 3
    verify = loaded.get("/v1/audit/verify", headers=AUDIT).json()
    assert verify["ok"] is True and verify["checked"] > 0
    jsonl = loaded.get("/v1/audit/export", params={"format": "jsonl"}, headers=AUDIT)
    assert len(jsonl.text.splitlines()) == verify["checked"]
    csv = loaded.get("/v1/audit/export", params={"format": "csv"}, headers=AUDIT)
    assert csv.headers["content-type"].startswith("text/csv")
    assert len(csv.text.splitlines()) == verify["checked"] + 1
    assert_problem(loaded.get("/v1/audit/export", params={"format": "xml"}, headers=AUDIT), 422)


def test_rejections_are_listed_with_their_reason(loaded: TestClient) -> None:
    response = loaded.post("/v1/events", json=[cloud_event(
        "pmo.project.started", "X2", {"started_on": "2026-04-02"}, id_="too-early")],
        headers=PUB)
    assert response.json()["results"][0]["status"] == "rejected"
    listed = loaded.get("/v1/rejections", headers=AUDIT).json()
    assert listed["counts"]["rejected"] == 1
    assert listed["items"][0]["kind"] == "rejected" and "proposed" in listed["items"][0]["reason"]
    assert listed["items"][0]["raw_base64"]


def test_projection_status_shows_no_lag_when_idle(loaded: TestClient) -> None:
    items = loaded.get("/v1/projections", headers=VIEW).json()["items"]
    assert {i["name"] for i in items} == {"portfolios", "projects", "programs", "managers",
                                          "audit"}
    assert all(i["lag"] == 0 and i["state"] == "live" and i["last_event_at"] for i in items)


@pytest.mark.parametrize(("path", "role"), [
    ("/v1/portfolios", "viewer"), ("/v1/portfolios/PF-1", "viewer"), ("/v1/projects", "viewer"),
    ("/v1/projects/X1", "viewer"), ("/v1/programs/PG", "viewer"), ("/v1/managers", "viewer"),
    ("/v1/managers/M1", "viewer"), ("/v1/projections", "viewer"), ("/v1/audit", "auditor"),
    ("/v1/audit/verify", "auditor"), ("/v1/audit/export", "auditor"),
    ("/v1/rejections", "auditor"),
])
def test_read_routes_need_a_key_with_the_role(loaded: TestClient, path: str, role: str) -> None:
    assert_problem(loaded.get(path), 401)
    assert_problem(loaded.get(path, headers=auth("wrong")), 401)
    assert_problem(loaded.get(path, headers=PUB), 403)
    if role == "auditor":
        assert_problem(loaded.get(path, headers=VIEW), 403)
    assert loaded.get(path, headers=AUDIT).status_code == 200


def test_admin_rebuilds_a_projection(loaded: TestClient) -> None:
    assert_problem(loaded.post("/v1/projections/projects/rebuild", headers=VIEW), 403)
    assert_problem(loaded.post("/v1/projections/nope/rebuild", headers=ADMIN), 404)
    assert loaded.post("/v1/projections/projects/rebuild", headers=ADMIN).status_code == 202
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        states = {i["name"]: i for i in loaded.get("/v1/projections", headers=VIEW).json()[
            "items"]}
        if states["projects"]["state"] == "live" and states["projects"]["lag"] == 0:
            break
        time.sleep(0.05)
    assert loaded.get("/v1/projects/X1", headers=VIEW).json()["actual_cost"] == "1250.50"
