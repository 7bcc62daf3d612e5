"""CONTRACT section 10 at ``POST /v1/events``: one regression test per write-side item of
issue 9's "Why", on a real SQLite and a real PostgreSQL store.

Envelope attributes out of their limits answer 400 (``malformed-event``), data fields
422 (``invalid-event-data``); a batch answers each item on its own; every refusal is in
``GET /v1/rejections``; nothing answers 5xx and the views stay caught up.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from fastapi.testclient import TestClient

from pmo.settings import Settings
from tests.e2e.conftest import (
    AUDIT,
    KEYS,
    PUB,
    approval,
    assert_problem,
    cloud_event,
    cost,
    portfolio,
    proposal,
    running_client,
)

BATCH = {**PUB, "Content-Type": "application/cloudevents-batch+json"}
MAX_BATCH = 50


@pytest.fixture
def edge(tmp_path: Path, store_url: str) -> Iterator[TestClient]:
    """The service on one backend (events and views in the same store), a 2 MiB body limit."""
    settings = Settings(data_dir=tmp_path / "data", api_keys=KEYS, event_store_url=store_url,
                        projection_store_url=store_url, max_body_bytes=2 * 1024 * 1024,
                        max_batch_events=MAX_BATCH, poll_interval_ms=5,
                        _env_file=None)  # type: ignore[call-arg]
    with running_client(settings) as client:
        yield client


def post(client: TestClient, body: Any, headers: dict[str, str] = PUB) -> Any:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post("/v1/events", content=raw,
                       headers={"Content-Type": "application/cloudevents+json", **headers})


def statuses(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["status"] for r in response.json()["results"]]


def rejections(client: TestClient) -> list[dict[str, Any]]:
    body = client.get("/v1/rejections?limit=1000", headers=AUDIT)
    assert body.status_code == 200, body.text
    items: list[dict[str, Any]] = body.json()["items"]
    return items


def assert_caught_up(client: TestClient, subjects: list[str] = ()) -> None:  # type: ignore[assignment]
    """Every projection at lag 0 (waiting up to 10 s), and every read route answers 200."""
    deadline = time.monotonic() + 10
    while True:
        status = client.get("/v1/projections", headers=AUDIT)
        assert status.status_code == 200, status.text
        body = status.json()
        items = body["items"] if isinstance(body, dict) else body
        if all(p["lag"] == 0 for p in items):
            break
        assert time.monotonic() < deadline, items
        time.sleep(0.05)
    routes = ["/v1/portfolios", "/v1/projects", "/v1/managers", "/v1/audit", "/v1/audit/verify",
              "/v1/rejections", "/v1/projections", "/metrics", "/healthz", "/readyz"]
    routes += [f"/v1/projects/{quote(s, safe='')}" for s in subjects]
    routes += [f"/v1/projects/{quote(s, safe='')}/history" for s in subjects]
    for route in routes:
        response = client.get(route, headers=AUDIT)
        assert response.status_code == 200, (route, response.text[:300])


def start_project(client: TestClient, key: str = "P-1") -> None:
    for event in (portfolio(envelope="1000000000.00"), proposal(key), approval(key)):
        assert post(client, event).status_code == 201


# -- money -------------------------------------------------------------------------------

@pytest.mark.parametrize("budget", ["1e27", "1E+3", "-0", "0E-1000026", "\u0661\u0662",
                                    "1_000", " 12 ", "1000000000000000000000000000",
                                    "1.23456", "NaN", "Infinity", "-5", "+5", "12.", ".5"])
def test_money_in_any_other_form_than_plain_digits_is_422(edge: TestClient, budget: str) -> None:
    start = [portfolio(envelope="1000000000.00"), proposal("P-1")]
    assert statuses(post(edge, start, BATCH)) == ["accepted", "accepted"]
    body = assert_problem(post(edge, approval("P-1", budget)), 422)
    assert "approved_budget" in body["reason"] and "decimal string" in body["reason"]
    assert rejections(edge)[-1]["kind"] == "dlq"
    assert_caught_up(edge, ["P-1"])


def test_a_1e27_budget_never_reaches_the_views(edge: TestClient) -> None:
    """Issue 9: ``1e27`` made every list answer 500, for good."""
    start = [portfolio(envelope="1000000000.00"), proposal("P-1")]
    assert statuses(post(edge, start, BATCH)) == ["accepted", "accepted"]
    assert_problem(post(edge, approval("P-1", "1e27")), 422)
    assert post(edge, approval("P-1", "999999999999999.9999")).status_code == 409  # envelope
    assert post(edge, approval("P-1", "1000.0001")).status_code == 201
    assert_caught_up(edge, ["P-1"])
    project = edge.get("/v1/projects/P-1", headers=AUDIT).json()
    assert project["approved_budget"] == "1000.0001"


# -- ids and text --------------------------------------------------------------------------

@pytest.mark.parametrize("subject", ["P\x00", "P\n1", "P\u202e1", "P\u2066", "\x1b[31m", "",
                                     "x" * 201])
def test_a_subject_out_of_its_limits_is_refused_and_logged(edge: TestClient,
                                                           subject: str) -> None:
    """Issue 9: a NUL subject was accepted, then stopped every projection on PostgreSQL."""
    body = assert_problem(post(edge, portfolio(subject)), 400)
    assert "subject" in body["reason"]
    logged = rejections(edge)
    assert len(logged) == 1 and logged[0]["kind"] == "dlq" and logged[0]["subject"] is None
    assert orjson.loads(base64.b64decode(logged[0]["raw_base64"]))["subject"] == (
        subject)
    assert_caught_up(edge)


def test_a_nul_in_the_cloudevent_id_is_a_dead_letter_not_a_500(edge: TestClient) -> None:
    body = assert_problem(post(edge, {**portfolio(), "id": "open\x00PF-1"}), 400)
    assert body["reason"].startswith("id: ")
    batch = [{**portfolio("PF-2"), "id": "a\x00"}, portfolio("PF-3")]
    assert statuses(post(edge, batch, BATCH)) == ["invalid", "accepted"]
    assert [r["kind"] for r in rejections(edge)] == ["dlq", "dlq"]
    assert_caught_up(edge)


def test_ids_of_200_characters_are_taken_and_of_300_refused(edge: TestClient) -> None:
    """Issue 9: a portfolio with a 300-character id could never get a project."""
    long_ok, too_long = "P" * 200, "P" * 300
    opened = portfolio(long_ok)
    opened["data"]["name"] = "Long"
    assert post(edge, {**opened, "id": long_ok}).status_code == 201
    assert post(edge, proposal("X-1", portfolio_id=long_ok)).status_code == 201
    assert_problem(post(edge, portfolio(too_long)), 400)
    body = assert_problem(post(edge, proposal("X-2", portfolio_id=too_long)), 422)
    assert "portfolio_id" in body["reason"]
    assert_problem(post(edge, {**portfolio("PF-9"), "source": "s" * 201}), 400)
    assert_problem(post(edge, {**portfolio("PF-9"), "id": "i" * 201}), 400)
    assert_caught_up(edge, ["X-1"])


def test_odd_but_printable_ids_are_stored_and_reachable(edge: TestClient) -> None:
    odd = "ACME %?# é 漢字 🚀"
    assert post(edge, portfolio()).status_code == 201
    assert post(edge, proposal(odd)).status_code == 201
    assert_caught_up(edge, [odd])
    assert edge.get(f"/v1/projects/{quote(odd, safe='')}", headers=AUDIT).json()[
        "project_id"] == odd


def test_a_1mb_grade_is_422(edge: TestClient) -> None:
    """Issue 9: a 1 MB grade was accepted and made the manager view 1 MB."""
    registered = cloud_event("pmo.manager.registered", "M-1",
                             {"name": "Mia", "capacity": 2, "grade": "g" * 1_000_000})
    body = assert_problem(post(edge, registered), 422)
    assert "grade" in body["reason"] and len(body["reason"]) < 3000
    assert post(edge, cloud_event("pmo.manager.registered", "M-1",
                                  {"name": "Mia", "capacity": 2, "grade": "g" * 200})
                ).status_code == 201
    assert_caught_up(edge)


@pytest.mark.parametrize(("field", "value", "ok"), [
    ("name", "a\nb", False), ("name", "a\tb", False), ("name", "n" * 201, False),
    ("sponsor", "COO\x00", False), ("name", "Ünïcode ✓", True)])
def test_short_text_has_no_control_characters_and_200_at_most(
        edge: TestClient, field: str, value: str, ok: bool) -> None:
    assert post(edge, portfolio()).status_code == 201
    event = proposal("P-1")
    event["data"][field] = value
    response = post(edge, event)
    assert response.status_code == (201 if ok else 422), response.text


@pytest.mark.parametrize(("summary", "ok"), [("line one\n\tline two", True), ("x" * 4000, True),
                                             ("x" * 4001, False), ("cr\r\nlf", False),
                                             ("nul\x00", False)])
def test_long_text_takes_tab_and_newline_and_4000_characters(
        edge: TestClient, summary: str, ok: bool) -> None:
    start_project(edge)
    report = cloud_event("pmo.project.status_reported", "P-1", {
        "overall": "green", "scope": "green", "schedule": "amber", "budget": "green",
        "percent_complete": 10, "summary": summary})
    assert post(edge, report).status_code == (201 if ok else 422)
    assert_caught_up(edge, ["P-1"])


# -- times ---------------------------------------------------------------------------------

@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00",
                                    "1969-12-31T23:59:59Z", "2026-03-02T09:30:00",
                                    "9999-12-30T00:00:01Z"])
def test_a_time_outside_1970_to_9999_12_30_or_without_offset_is_refused(
        edge: TestClient, moment: str) -> None:
    """Issue 9: such times answered 500 and failed their whole batch."""
    assert_problem(post(edge, {**portfolio(), "time": moment}), 400)
    batch = [{**portfolio("PF-2"), "time": moment}, portfolio("PF-3")]
    assert statuses(post(edge, batch, BATCH)) == ["invalid", "accepted"]
    assert len(rejections(edge)) == 2
    assert_caught_up(edge)


def test_the_bounds_themselves_are_taken(edge: TestClient) -> None:
    batch = [{**portfolio("PF-1"), "time": "1970-01-01T00:00:00Z"},
             {**portfolio("PF-2"), "time": "9999-12-30T00:00:00Z"},
             {**portfolio("PF-3"), "time": "9999-12-29T19:00:00-05:00"}]
    assert statuses(post(edge, batch, BATCH)) == ["accepted"] * 3
    assert_caught_up(edge)


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "1969-12-31", 1700000000])
def test_dates_out_of_range_are_422(edge: TestClient, day: Any) -> None:
    assert post(edge, portfolio()).status_code == 201
    event = proposal("P-1")
    event["data"]["planned_finish"] = day
    assert_problem(post(edge, event), 422)
    assert_caught_up(edge)


# -- batches -------------------------------------------------------------------------------

def nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [300, 2000])
def test_a_deeply_nested_item_is_invalid_alone_and_its_batch_is_decided(
        edge: TestClient, depth: int) -> None:
    """Issue 9: 300 levels answered 500 and lost the good items (orjson reads 1,024 levels
    and writes 254); 2,000 levels make the whole array unreadable to orjson."""
    deep = portfolio("PF-DEEP")
    deep["data"]["name"] = "@@DEEP@@"
    raw = orjson.dumps([portfolio("PF-1"), deep, portfolio("PF-2")]).replace(
        b'"@@DEEP@@"', b"[" * depth + b"0" + b"]" * depth)
    results = post(edge, raw, BATCH).json()["results"]
    assert [r["status"] for r in results] == ["accepted", "invalid", "accepted"]
    assert results[1]["reason"]
    logged = rejections(edge)
    assert len(logged) == 1
    # The refused item is kept as it was received (or as orjson writes it back).
    kept = base64.b64decode(logged[0]["raw_base64"])
    assert kept.count(b"[") == depth and b"PF-DEEP" in kept
    assert_caught_up(edge)


def test_a_nul_byte_in_one_item_leaves_the_others_decided(edge: TestClient) -> None:
    raw = b"[" + orjson.dumps(portfolio("PF-1")) + b', {"id": "x\x00"}, ' + orjson.dumps(
        portfolio("PF-2")) + b"]"
    results = post(edge, raw, BATCH).json()["results"]
    assert [r["status"] for r in results] == ["accepted", "invalid", "accepted"]
    assert results[1]["code"] == "malformed-event"
    assert base64.b64decode(rejections(edge)[0]["raw_base64"]) == b'{"id": "x\x00"}'


def test_a_batch_over_the_limit_is_413_naming_it_and_logs_nothing(edge: TestClient) -> None:
    """Issue 9: 524,000 items held the ingest lock 5.4 s and wrote 524,000 rejection rows."""
    body = b"[" + b",".join([b"0"] * 524_000) + b"]"
    problem = assert_problem(post(edge, body, BATCH), 413)
    assert problem["limit"] == MAX_BATCH and "PMO_MAX_BATCH_EVENTS" in problem["detail"]
    unreadable = body[:-1] + b', "\x00"]'  # read item by item: still refused whole
    assert assert_problem(post(edge, unreadable, BATCH), 413)["limit"] == MAX_BATCH
    over = [portfolio(f"PF-{n}") for n in range(MAX_BATCH + 1)]
    assert assert_problem(post(edge, over, BATCH), 413)["items"] == MAX_BATCH + 1
    assert rejections(edge) == []
    assert statuses(post(edge, over[:MAX_BATCH], BATCH)) == ["accepted"] * MAX_BATCH
    assert_caught_up(edge)


def test_wrong_types_and_odd_numbers_are_refused_per_item(edge: TestClient) -> None:
    start_project(edge)
    bad = [cost("P-1", 12, 1), cost("P-1", "0", 2), {**cost("P-1", "1", 3), "time": 5},
           {**cost("P-1", "1", 4), "subject": ["P-1"]},
           {**cost("P-1", "1", 5), "data": [1]},
           {**cost("P-1", "1", 6), "ext": {"nested": 1}},
           cloud_event("pmo.manager.registered", "M-1", {"name": "M", "capacity": 10**18}),
           cloud_event("pmo.manager.registered", "M-2", {"name": "M", "capacity": True}),
           cloud_event("pmo.portfolio.objective_set", "PF-1", {
               "objective_id": "O", "title": "t", "weight": "1e-1000000"}),
           cloud_event("pmo.project.risk_raised", "P-1", {
               "risk_id": "R", "title": "t", "probability": 1e-300, "impact": 3}),
           cost("P-1", "12.50", 7)]
    results = post(edge, bad, BATCH).json()["results"]
    assert [r["status"] for r in results] == ["invalid"] * (len(bad) - 1) + ["accepted"]
    assert all(r["reason"] for r in results[:-1])
    assert len(rejections(edge)) == len(bad) - 1
    assert_caught_up(edge, ["P-1"])
    assert edge.get("/v1/projects/P-1", headers=AUDIT).json()["actual_cost"] == "12.50"


def test_values_at_every_limit_are_taken_and_every_view_computes(edge: TestClient) -> None:
    """What the limits let through, the views can show: the largest amounts, the earliest
    and latest dates and times, 200-character ids and text, 4,000-character long text."""
    top, pid, text, long_text = "999999999999999.9999", "P" * 200, "t" * 200, "l" * 4000
    events = [
        {**cloud_event("pmo.portfolio.opened", "PF-1", {
            "name": text, "pmo_type": "directive", "currency": "EUR", "budget_envelope": top,
            "owner": text}), "time": "1970-01-01T00:00:00Z"},
        cloud_event("pmo.manager.registered", "M-1", {"name": text, "capacity": 10_000,
                                                      "grade": text}),
        cloud_event("pmo.portfolio.objective_set", "PF-1", {
            "objective_id": "O" * 200, "title": text, "weight": 1e-17}),
        {**cloud_event("pmo.project.proposed", pid, {
            "portfolio_id": "PF-1", "name": text, "sponsor": text, "budget_requested": top,
            "planned_start": "1970-01-01", "planned_finish": "9999-12-30",
            "objectives": [{"objective_id": "O" * 200, "contribution": 1}], "priority": 5}),
         "id": "propose"},
        {**cloud_event("pmo.project.manager_assigned", pid, {"manager_id": "M-1"}), "id": "a"},
        {**cloud_event("pmo.project.approved", pid, {"approved_budget": top,
                                                     "approver": text}), "id": "b"},
        {**cloud_event("pmo.project.started", pid, {"started_on": "9999-12-30"}), "id": "c"},
        *[{**cost(pid, top, n), "id": f"cost-{n}"} for n in range(3)],
        {**cloud_event("pmo.project.forecast_updated", pid, {
            "estimate_at_completion": top}), "id": "d"},
        {**cloud_event("pmo.project.status_reported", pid, {
            "overall": "red", "scope": "red", "schedule": "red", "budget": "red",
            "percent_complete": 100, "summary": long_text}), "id": "e"},
        {**cloud_event("pmo.project.milestone_planned", pid, {
            "milestone_id": "M" * 200, "name": text, "due": "9999-12-30"}), "id": "f"},
        {**cloud_event("pmo.project.schedule_changed", pid, {
            "planned_finish": "1970-01-01", "reason": long_text}), "id": "g"},
        {**cloud_event("pmo.project.completed", pid, {
            "finished_on": "9999-12-30", "outcome": long_text}),
         "id": "h", "time": "9999-12-30T00:00:00Z"},
    ]
    assert statuses(post(edge, events, BATCH)) == ["accepted"] * len(events)
    assert_caught_up(edge, [pid])
    for route in ("/v1/portfolios/PF-1", "/v1/managers/M-1"):
        assert edge.get(route, headers=AUDIT).status_code == 200
    project = edge.get(f"/v1/projects/{pid}", headers=AUDIT).json()
    assert project["approved_budget"] == top and project["state"] == "completed"
