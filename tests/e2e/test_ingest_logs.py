"""Every log record of the ingest path names its CloudEvent by ``source`` and ``id``, in
text and in JSON (PMO_LOG_FORMAT): an operator finds what became of one event by grep."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient

from bench.workload import event
from pmo.logs import TEXT, JsonFormatter, TextFormatter

AUTH = {"Authorization": "Bearer all-key"}
SOURCE = 'urn:crm/"eu" west'  # a space and quotes: the text line must still parse
OPEN = {**event(1, "pmo.portfolio.opened", "PF-LOG", {
    "name": "Logs", "pmo_type": "controlling", "currency": "EUR",
    "budget_envelope": "1000", "owner": "pmo"}), "source": SOURCE, "id": "open 1"}
MALFORMED = {**OPEN, "id": "bad 2", "data": {"name": "no currency"}}
UNKNOWN = {**event(3, "pmo.project.approved", "P-NOWHERE", {
    "approved_budget": "1", "approver": "x"}), "source": SOURCE, "id": "approve 3"}


def test_each_ingest_record_carries_the_events_source_and_id(
        client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="ingest"):
        answer = client.post("/v1/events", json=[OPEN, MALFORMED, UNKNOWN], headers=AUTH)
    assert [r["status"] for r in answer.json()["results"]] == ["accepted", "invalid",
                                                                "rejected"]
    records = [r for r in caplog.records if r.name.startswith("ingest")]
    by_id = {getattr(r, "event_id", None): r for r in records}
    assert set(by_id) == {"open 1", "bad 2", "approve 3"}, records
    assert all(getattr(r, "source", None) == SOURCE for r in records)
    assert by_id["bad 2"].levelno == by_id["approve 3"].levelno == logging.INFO
    assert by_id["open 1"].levelno == logging.DEBUG  # one line per stored event: DEBUG only

    for record in records:
        entry = json.loads(JsonFormatter().format(record))
        assert (entry["source"], entry["event_id"]) == (SOURCE, record.event_id)
        line = TextFormatter(TEXT).format(record)
        assert "\n" not in line
        # The fields follow the message, JSON-quoted: read back exactly.
        assert f"source={json.dumps(SOURCE)} event_id={json.dumps(record.event_id)}" in line
        assert line.index(record.getMessage()) < line.index(" source=")
