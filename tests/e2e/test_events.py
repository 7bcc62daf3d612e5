"""POST /v1/events: single and batch, structured and binary, every outcome's status code."""

from __future__ import annotations

import base64
from typing import Any

import orjson
from fastapi.testclient import TestClient

from tests.e2e.conftest import (
    BODY_LIMIT,
    INGEST_BATCH,
    PUB,
    approval,
    assert_problem,
    cloud_event,
    portfolio,
    proposal,
)

BATCH = {**PUB, "Content-Type": "application/cloudevents-batch+json"}


def post(client: TestClient, body: Any, headers: dict[str, str] = PUB) -> Any:
    return client.post("/v1/events", content=orjson.dumps(body),
                       headers={"Content-Type": "application/cloudevents+json", **headers})


def test_a_stored_event_answers_201_with_its_position(client: TestClient) -> None:
    response = post(client, portfolio())
    assert response.status_code == 201
    body = response.json()
    assert body["id"] == "open-PF-1" and body["status"] == "accepted"
    assert isinstance(body["position"], int) and body["position"] >= 1


def test_a_duplicate_answers_200_with_the_first_position(client: TestClient) -> None:
    first = post(client, portfolio()).json()
    again = post(client, portfolio())
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert again.json()["position"] == first["position"]


def test_plain_application_json_is_structured_mode(client: TestClient) -> None:
    response = client.post("/v1/events", json=portfolio(), headers=PUB)
    assert response.status_code == 201


def test_a_domain_rejection_is_409_with_the_reason(client: TestClient) -> None:
    post(client, portfolio())
    body = assert_problem(post(client, proposal("P-1", portfolio_id="PF-404")), 409)
    assert body["reason"] == "unknown portfolio 'PF-404'"
    assert body["type"].endswith("/unknown-aggregate")


def test_a_rejection_into_an_empty_store_is_409(client: TestClient) -> None:
    assert_problem(post(client, proposal("P-1", portfolio_id="PF-404")), 409)


def test_over_the_envelope_is_409_naming_the_amounts(client: TestClient) -> None:
    post(client, portfolio(envelope="150000.00"))
    post(client, proposal("P-1"))
    body = assert_problem(post(client, approval("P-1", "200000.00")), 409)
    assert "200000.00 EUR exceeds the 150000.00 EUR" in body["reason"]


def test_a_wrong_transition_is_409_naming_state_and_event(client: TestClient) -> None:
    post(client, portfolio())
    post(client, proposal("P-1"))
    started = cloud_event("pmo.project.started", "P-1", {"started_on": "2026-04-01"})
    body = assert_problem(post(client, started), 409)
    assert "'started'" in body["reason"] and "'proposed'" in body["reason"]


def test_invalid_json_is_400(client: TestClient) -> None:
    response = client.post("/v1/events", content=b'{"specversion": ',
                           headers={**PUB, "Content-Type": "application/cloudevents+json"})
    assert "not valid JSON" in assert_problem(response, 400)["reason"]


def test_a_missing_cloudevent_attribute_is_400(client: TestClient) -> None:
    event = portfolio()
    del event["source"]
    assert "source" in assert_problem(post(client, event), 400)["reason"]


def test_a_non_object_event_is_400(client: TestClient) -> None:
    assert_problem(post(client, "just a string"), 400)


def test_data_failing_its_schema_is_422(client: TestClient) -> None:
    event = portfolio()
    event["data"]["budget_envelope"] = 1000.5  # money must be a decimal string
    body = assert_problem(post(client, event), 422)
    assert "budget_envelope" in body["reason"]


def test_an_unknown_type_is_422(client: TestClient) -> None:
    event = cloud_event("pmo.project.teleported", "P-1", {})
    assert "unknown event type" in assert_problem(post(client, event), 422)["reason"]


def test_refused_events_reach_the_rejections_log(client: TestClient) -> None:
    post(client, portfolio())
    post(client, proposal("P-9", portfolio_id="PF-404"))
    client.post("/v1/events", content=b"{broken", headers=PUB)
    listed = client.get("/v1/rejections", headers={"Authorization": "Bearer audit-key"})
    assert listed.status_code == 200, listed.text
    reasons = [item["reason"] for item in listed.json()["items"]]
    assert "unknown portfolio 'PF-404'" in reasons
    assert any("not valid JSON" in r for r in reasons)


def test_a_refused_batch_item_is_logged_with_its_own_bytes(client: TestClient) -> None:
    # Valid envelopes take the batch path, which writes an item's bytes only when refused.
    refused = proposal("P-8", portfolio_id="PF-404")
    answer = client.post("/v1/events", content=orjson.dumps([portfolio(), refused]),
                         headers=BATCH)
    assert [r["status"] for r in answer.json()["results"]] == ["accepted", "rejected"]
    listed = client.get("/v1/rejections", headers={"Authorization": "Bearer audit-key"}).json()
    (item,) = [i for i in listed["items"] if i["event_id"] == refused["id"]]
    assert base64.b64decode(item["raw_base64"]) == orjson.dumps(refused)


def test_a_body_over_the_limit_is_413_by_its_length(client: TestClient) -> None:
    body = b"[" + b" " * BODY_LIMIT + b"]"
    assert_problem(client.post("/v1/events", content=body, headers=BATCH), 413)


def test_a_streamed_body_over_the_limit_is_413(client: TestClient) -> None:
    def chunks() -> Any:
        yield b"["
        for _ in range(BODY_LIMIT // 1024 + 1):
            yield b" " * 1024
        yield b"]"

    response = client.post("/v1/events", content=chunks(), headers=BATCH)
    assert_problem(response, 413)


def test_a_content_type_that_is_not_json_is_415(client: TestClient) -> None:
    response = client.post("/v1/events", content=b"hello",
                           headers={**PUB, "Content-Type": "text/plain"})
    assert_problem(response, 415)


def test_a_wrong_method_is_405_problem(client: TestClient) -> None:
    assert_problem(client.get("/v1/events", headers=PUB), 405)


def test_an_unknown_route_is_404_problem(client: TestClient) -> None:
    assert_problem(client.get("/v1/nothing-here", headers=PUB), 404)


def test_a_batch_answers_each_event_in_order(client: TestClient) -> None:
    bad_data = proposal("P-3")
    bad_data["data"]["budget_requested"] = -5
    no_id = proposal("P-4")
    del no_id["id"]
    events = [portfolio(), proposal("P-1"), proposal("P-1"), bad_data, no_id,
              proposal("P-2", portfolio_id="PF-404")]
    response = client.post("/v1/events", content=orjson.dumps(events), headers=BATCH)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == [
        "accepted", "accepted", "duplicate", "invalid", "invalid", "rejected"]
    assert results[2]["position"] == results[1]["position"]
    assert results[3]["code"] == "invalid-event-data" and "budget_requested" in results[3][
        "reason"]
    assert results[4]["code"] == "malformed-event" and "id" in results[4]["reason"]
    assert results[5]["reason"] == "unknown portfolio 'PF-404'"
    assert "reason" not in results[0]


def test_a_repeated_batch_answers_duplicate_throughout(client: TestClient) -> None:
    events = [portfolio(), proposal("P-1"), proposal("P-2")]
    first = client.post("/v1/events", content=orjson.dumps(events), headers=BATCH).json()
    again = client.post("/v1/events", content=orjson.dumps(events), headers=BATCH).json()
    assert [r["status"] for r in again["results"]] == ["duplicate"] * 3
    assert [r["position"] for r in again["results"]] == [r["position"] for r in first["results"]]


def test_a_batch_larger_than_one_ingest_chunk_is_answered_whole(client: TestClient) -> None:
    events = [portfolio()] + [proposal(f"P-{i}") for i in range(2 * INGEST_BATCH + 10)]
    response = client.post("/v1/events", content=orjson.dumps(events), headers=BATCH)
    statuses = [r["status"] for r in response.json()["results"]]
    assert statuses == ["accepted"] * len(events)


def test_binary_mode_takes_attributes_from_ce_headers(client: TestClient) -> None:
    event = portfolio()
    headers = {**PUB, "Content-Type": "application/json", "ce-specversion": "1.0",
               "ce-id": event["id"], "ce-source": event["source"], "ce-type": event["type"],
               "ce-subject": event["subject"], "ce-time": event["time"], "ce-actor": "tester"}
    response = client.post("/v1/events", content=orjson.dumps(event["data"]), headers=headers)
    assert response.status_code == 201, response.text
    again = post(client, event)  # the same event in structured mode is the same message
    assert again.json()["status"] == "duplicate"


def test_binary_mode_without_required_headers_is_400(client: TestClient) -> None:
    headers = {**PUB, "Content-Type": "application/json", "ce-specversion": "1.0",
               "ce-id": "x-1", "ce-type": "pmo.portfolio.opened"}
    body = assert_problem(client.post("/v1/events", content=b"{}", headers=headers), 400)
    assert "source" in body["reason"]


def test_a_read_right_after_the_answer_sees_the_write(client: TestClient) -> None:
    post(client, portfolio())
    assert post(client, proposal("P-1")).status_code == 201
    response = client.get("/v1/projects/P-1", headers={"Authorization": "Bearer view-key"})
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "proposed"
