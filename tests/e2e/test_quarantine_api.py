"""Quarantine over HTTP: reads stay 200, status and metrics show it, the auditor lists it,
the admin retries or evicts it, and each action is in the audit trail's hash chain."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.deps import Services
from domain.project import Project
from projections.audit_verify import contract
from tests.e2e.conftest import (
    AUDIT,
    PUB,
    VIEW,
    approval,
    assert_problem,
    auth,
    cost,
    portfolio,
    proposal,
)
from tests.quarantine_support import store_raw, unreadable_amount

ADMIN = auth("admin-key")
ADMIN_ACTOR = "key:" + hashlib.sha256(b"admin-key").hexdigest()[:16]
SLASHED = "ACME/PRJ-9"  # an id with a slash: reachable percent-encoded
SLASHED_PATH = "ACME%2FPRJ-9"


def publish(client: TestClient, *events: dict[str, Any]) -> None:
    response = client.post("/v1/events", json=list(events), headers=PUB)
    assert response.status_code == 200, response.text
    assert all(r["status"] == "accepted" for r in response.json()["results"]), response.text


def caught_up(services: Services) -> None:
    assert services.runner is not None
    services.runner.wake()
    assert services.runner.wait_for(services.app.recorder.max_notification_id() or 0, 10)


def poison(services: Services, key: str) -> int:
    """A cost of ``key`` stored as an old service could have: an amount no fold reads."""
    aggregate_id = Project.id_for(key)
    version = services.app.repository.get(aggregate_id).version
    position = store_raw(services.app, Project.CostRecorded, aggregate_id, version + 1,
                         unreadable_amount, amount=Decimal("1"), currency="EUR",
                         incurred_on=date(2026, 5, 2), category="labour", reference="old")
    caught_up(services)
    return position


@pytest.fixture
def quarantined(client: TestClient, services: Services) -> tuple[TestClient, int]:
    publish(client, portfolio(), proposal("PRJ-1"), approval("PRJ-1"), proposal("PRJ-2"),
            proposal(SLASHED), cost("PRJ-1", "10.00", 1))
    caught_up(services)
    bad = poison(services, "PRJ-1")
    poison(services, SLASHED)
    publish(client, approval("PRJ-2"))  # a later batch of another project
    caught_up(services)
    return client, bad


def test_reads_answer_200_and_say_quarantined(quarantined: tuple[TestClient, int]) -> None:
    client, _ = quarantined
    project = client.get("/v1/projects/PRJ-1", headers=VIEW)
    assert project.status_code == 200
    assert (project.json()["quarantined"], project.json()["actual_cost"]) == (True, "10.00")
    other = client.get("/v1/projects/PRJ-2", headers=VIEW).json()
    assert (other["state"], other["quarantined"]) == ("approved", False)
    listed = {p["project_id"]: p["quarantined"]
              for p in client.get("/v1/projects", headers=VIEW).json()["items"]}
    assert listed == {"PRJ-1": True, "PRJ-2": False, SLASHED: True}
    folio = client.get("/v1/portfolios/PF-1", headers=VIEW).json()
    assert folio["quarantined"] is True
    assert folio["quarantined_projects"] == [SLASHED, "PRJ-1"]
    # As of now, from the stored events: the fold stops before the event it cannot read.
    now = datetime.now(UTC).isoformat()
    past = client.get("/v1/projects/PRJ-1", params={"as_of": now}, headers=AUDIT)
    assert past.status_code == 200, past.text
    assert (past.json()["quarantined"], past.json()["actual_cost"]) == (True, "10.00")
    past = client.get("/v1/projects/PRJ-2", params={"as_of": now}, headers=AUDIT).json()
    assert past["quarantined"] is False
    past = client.get("/v1/portfolios/PF-1", params={"as_of": now}, headers=AUDIT).json()
    assert (past["quarantined"], past["quarantined_projects"]) == (True, [SLASHED, "PRJ-1"])


def test_status_and_metrics_show_it_without_the_exception_text(
        quarantined: tuple[TestClient, int]) -> None:
    client, bad = quarantined
    viewer = client.get("/v1/projections", headers=VIEW)
    assert viewer.status_code == 200
    assert "InvalidOperation" not in viewer.text  # viewers get a generic line
    response = client.get("/v1/projections", headers=AUDIT)
    assert response.status_code == 200
    items = {i["name"]: i for i in response.json()["items"]}
    assert all(i["lag"] == 0 for i in items.values())
    assert (items["projects"]["quarantined"], items["projects"]["held_events"]) == (2, 2)
    first = {q["aggregate"]: q for q in items["projects"]["quarantined_aggregates"]}
    assert first["PRJ-1"]["first_position"] == bad
    assert first["PRJ-1"]["error"] == "InvalidOperation"
    assert "ConversionSyntax" not in response.text and "twelve" not in response.text
    assert items["audit"]["quarantined"] == 0
    metrics = client.get("/metrics").text
    assert 'pmo_projection_quarantined{projection="projects"} 2' in metrics
    assert 'pmo_projection_quarantined{projection="portfolios"} 0' in metrics
    assert 'pmo_projection_held_events{projection="projects"} 2' in metrics


def test_the_auditor_lists_quarantined_aggregates(quarantined: tuple[TestClient, int]) -> None:
    client, bad = quarantined
    assert_problem(client.get("/v1/quarantine", headers=VIEW), 403)
    assert_problem(client.get("/v1/quarantine"), 401)
    body = client.get("/v1/quarantine", headers=AUDIT).json()
    items = {i["aggregate"]: i for i in body["items"]}
    assert set(items) == {"PRJ-1", SLASHED} and body["next_cursor"] is None
    one = items["PRJ-1"]
    assert (one["projection"], one["first_position"], one["held_events"]) == (
        "projects", bad, 1)
    assert one["error"].startswith("InvalidOperation") and one["since"].endswith("+00:00")
    first = client.get("/v1/quarantine?limit=1", headers=AUDIT).json()
    rest = client.get(f"/v1/quarantine?limit=1&cursor={first['next_cursor']}",
                      headers=AUDIT).json()
    assert len(first["items"]) == len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert {first["items"][0]["aggregate"], rest["items"][0]["aggregate"]} == set(items)
    assert_problem(client.get("/v1/quarantine?cursor=%C2%B2", headers=AUDIT), 422)
    assert client.get("/v1/quarantine?projection=managers", headers=AUDIT).json()["items"] == []


def test_only_the_admin_acts_and_unknown_ones_are_404(
        quarantined: tuple[TestClient, int]) -> None:
    client, _ = quarantined
    assert_problem(client.post("/v1/quarantine/projects/PRJ-1/retry", headers=AUDIT), 403)
    assert_problem(client.post("/v1/quarantine/projects/PRJ-1/evict", headers=VIEW), 403)
    for path in ("/v1/quarantine/nope/PRJ-1/retry", "/v1/quarantine/audit/PRJ-1/evict",
                 "/v1/quarantine/projects/PRJ-2/retry", "/v1/quarantine/portfolios/PRJ-1/evict",
                 "/v1/quarantine/projects/unknown/evict"):
        assert_problem(client.post(path, headers=ADMIN), 404)


def test_retry_and_evict_are_recorded_in_the_audit_trail(
        quarantined: tuple[TestClient, int], services: Services) -> None:
    client, bad = quarantined
    retried = client.post("/v1/quarantine/projects/PRJ-1/retry", headers=ADMIN)
    assert retried.status_code == 200, retried.text
    outcome = retried.json()
    # The stored body is as unreadable as before: it stays quarantined, with the error.
    assert (outcome["status"], outcome["first_position"], outcome["actor"]) == (
        "quarantined", bad, ADMIN_ACTOR)
    assert services.projections.project(SLASHED) is not None
    evicted = client.post(f"/v1/quarantine/projects/{SLASHED_PATH}/evict", headers=ADMIN)
    assert evicted.status_code == 200, evicted.text
    assert (evicted.json()["status"], evicted.json()["aggregate"]) == ("evicted", SLASHED)
    caught_up(services)
    assert services.projections.project(SLASHED) is None  # its view is gone
    listed = client.get("/v1/quarantine", headers=AUDIT).json()["items"]
    assert [(i["aggregate"], i["retries"]) for i in listed] == [("PRJ-1", 1)]

    trail = client.get("/v1/audit?type=pmo.ledger.quarantine_retried", headers=AUDIT).json()
    assert [(e["aggregate_id"], e["actor"], e["kind"]) for e in trail["items"]] == [
        ("quarantine/projects/PRJ-1", ADMIN_ACTOR, "ledger")]
    trail = client.get("/v1/audit", headers=AUDIT,
                       params={"aggregate": f"quarantine/projects/{SLASHED}"}).json()
    assert [e["type"] for e in trail["items"]] == ["pmo.ledger.quarantine_evicted"]
    assert "admin-key" not in client.get("/v1/audit/export?format=jsonl", headers=AUDIT).text
    verified = client.get("/v1/audit/verify", headers=AUDIT).json()
    head = services.app.recorder.max_notification_id()
    assert contract(verified) == {"ok": True, "checked": head}
    # The views ignore the service's own events: nothing new quarantined, nothing lagging.
    items = {i["name"]: i for i in client.get("/v1/projections", headers=VIEW).json()["items"]}
    assert all(i["lag"] == 0 for i in items.values())
    assert {n: i["quarantined"] for n, i in items.items()} == {
        "portfolios": 0, "projects": 1, "programs": 0, "managers": 0, "audit": 0}


def test_history_shows_an_event_this_version_cannot_decode(
        quarantined: tuple[TestClient, int]) -> None:
    client, bad = quarantined
    response = client.get("/v1/projects/PRJ-1/history", headers=AUDIT)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [i["version"] for i in items] == list(range(1, len(items) + 1))
    raw = [i for i in items if "undecodable" in i]
    assert [i["position"] for i in raw] == [bad]
    assert raw[0]["type"] == "pmo.project.cost_recorded"
    assert raw[0]["data"]["amount"]["_data_"] == "twelve"  # as stored
    assert all("undecodable" not in i for i in items if i["position"] != bad)
