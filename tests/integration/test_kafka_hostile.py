"""Issue 9 on the real broker: hostile messages on ``pmo.inbound``, and eight producers
writing to one project, through the real workers (``pmo ingest``, ``pmo relay``,
``pmo consume --all``) as separate processes.

Every message ends stored, or dead-lettered (``pmo.inbound.dlq``) or rejected
(``pmo.inbound.rejected``) with its reason, and so in ``GET /v1/rejections``; no
message stalls its partition; afterwards every projection has lag 0 and every read
route answers 200.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaProducer

from api.app import create_app
from api.deps import Services
from consumers.topics import DLQ, INBOUND
from pmo.bootstrap import build_services
from pmo.settings import Settings
from tests.conftest import KAFKA_BOOTSTRAP
from tests.hostile import assert_caught_up, encode, hostile_events, setup_events
from tests.kafka_support import Worker, header, kafka_settings, produce, read_all, wait_for

pytestmark = pytest.mark.kafka

KEY = "k"
ALL = {"Authorization": f"Bearer {KEY}"}
BODY_LIMIT = 64 * 1024
EXAMPLES = 40  # batches of up to 8 messages
STRUCTURED = [("content-type", b"application/cloudevents+json")]
Message = tuple[bytes | None, bytes, list[tuple[str, bytes]]]


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             ) -> Iterator[tuple[Settings, list[Worker]]]:
    """The three Kafka workers on a fresh prefix, one ``pmo.inbound`` partition (publishers'
    order kept across subjects), a 64 KiB message limit."""
    monkeypatch.setenv("PMO_MAX_BODY_BYTES", str(BODY_LIMIT))
    settings = kafka_settings(tmp_path, inbound_partitions=1, max_body_bytes=BODY_LIMIT,
                              api_keys={KEY: ["publisher", "viewer", "auditor", "admin"]})
    workers = [Worker(settings, tmp_path, "ingest"), Worker(settings, tmp_path, "relay"),
               Worker(settings, tmp_path, "consume", "--all")]
    try:
        yield settings, workers
    finally:
        for w in workers:
            w.stop()


@pytest.fixture
def reader(pipeline: tuple[Settings, list[Worker]]) -> Iterator[TestClient]:
    services: Services = build_services(pipeline[0])
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        yield client
    services.app.close()


def receipts(settings: Settings) -> int:
    path = settings.event_store.path
    try:
        with sqlite3.connect(path) as db:
            return int(db.execute("SELECT COUNT(*) FROM inbound_receipts").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def refusals(client: TestClient) -> dict[str, int]:
    response = client.get("/v1/rejections?limit=1", headers=ALL)
    assert response.status_code == 200, response.text
    counts: dict[str, int] = response.json()["counts"]
    return counts


def structured(event: Any) -> Message:
    subject = event.get("subject") if isinstance(event, dict) else None
    key = subject.encode() if isinstance(subject, str) else None
    return key, encode(event), STRUCTURED


# Known hostile messages first (issue 9's items), then generated ones.
FIXED: list[Message] = [
    (b"P-H1", orjson.dumps({"specversion": "1.0", "id": "nul\x00id", "source": "urn:x",
                            "type": "pmo.project.cancelled", "subject": "P-H1",
                            "time": "2026-03-02T09:30:00Z", "data": {"reason": "x"}}), []),
    (b"P\x00", orjson.dumps({"specversion": "1.0", "id": "nul-subject", "source": "urn:x",
                             "type": "pmo.portfolio.opened", "subject": "P\x00",
                             "time": "2026-03-02T09:30:00Z", "data": {}}), []),
    (None, b'{"specversion": "1.0", "id": "raw\x00nul"}', []),
    (None, b"[" * 3000 + b"]" * 3000, []),
    (None, b"", []),
    (None, b"\xff\xfe not utf-8", [("ce_specversion", b"\xff")]),
    (None, b"x" * 1_000_000, []),  # over the limit; with our headers, over 1 MB too
]


def test_hostile_messages_on_pmo_inbound_all_end_somewhere_with_a_reason(
        pipeline: tuple[Settings, list[Worker]], reader: TestClient) -> None:
    settings_, workers = pipeline
    inbound = settings_.topic(INBOUND)
    produced = produce(inbound, [structured(e) for e in setup_events()])
    produced += produce(inbound, FIXED)
    seen: set[str] = set()

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(hostile_events(), min_size=1, max_size=8))
    def publish(events: list[dict[str, Any]]) -> None:
        nonlocal produced
        for event in events:  # a repeated (source, id) would be a silent duplicate
            key = repr((event.get("source"), event.get("id")))
            if key in seen:
                event["id"] = uuid.uuid4().hex
            seen.add(repr((event.get("source"), event.get("id"))))
        produced += produce(inbound, [structured(e) for e in events])

    publish()
    wait_for(lambda: receipts(settings_) + sum(refusals(reader).values()) >= produced,
             f"all {produced} messages stored or refused", timeout_s=180, workers=workers)
    counts = refusals(reader)
    assert receipts(settings_) + sum(counts.values()) == produced
    assert counts["dlq"] >= len(FIXED) and counts["rejected"] > 0
    items = reader.get("/v1/rejections?limit=1000", headers=ALL).json()["items"]
    assert all(item["reason"] and item["reason"] != "no reason recorded" for item in items)
    read = assert_caught_up(reader, ALL, timeout_s=120)
    assert read["portfolios"] > 0 and read["projects"] > 0
    # The oversize message is a dead letter too, its head kept with size and digest.
    dead = read_all(settings_.topic(DLQ), counts["dlq"], timeout_s=60)
    truncated = [m for m in dead if header(m, "pmo_truncated_from")]
    assert [header(m, "pmo_truncated_from") for m in truncated] == [b"1000000"]
    assert all(w.alive() for w in workers)
    print(f"hostile Kafka: {produced} messages, {receipts(settings_)} stored, {counts}")


def test_eight_producers_on_one_project_lose_no_update(
        pipeline: tuple[Settings, list[Worker]], reader: TestClient) -> None:
    settings_, workers = pipeline
    inbound = settings_.topic(INBOUND)

    def event(n: str, type_: str, subject: str, data: dict[str, Any]) -> Message:
        return subject.encode(), orjson.dumps({
            "specversion": "1.0", "id": n, "source": "urn:load", "type": type_,
            "subject": subject, "time": "2026-03-02T09:30:00Z", "data": data}), STRUCTURED

    produce(inbound, [
        event("1", "pmo.portfolio.opened", "PF-1", {
            "name": "Load", "pmo_type": "controlling", "currency": "EUR",
            "budget_envelope": "100000000", "owner": "pmo"}),
        event("2", "pmo.project.proposed", "P-1", {
            "portfolio_id": "PF-1", "name": "One", "sponsor": "cfo", "budget_requested": "5000",
            "planned_start": "2026-01-01", "planned_finish": "2026-12-31"}),
        event("3", "pmo.project.approved", "P-1", {"approved_budget": "5000",
                                                   "approver": "board"}),
        event("4", "pmo.project.started", "P-1", {"started_on": "2026-01-02"})])
    producers, per_producer = 8, 25
    amounts: list[Decimal] = []
    lock = threading.Lock()

    def publish(p: int) -> None:
        producer = KafkaProducer(bootstrap_servers=KAFKA_BOOTSTRAP, linger_ms=5)
        futures = []
        for n in range(per_producer):
            amount = f"{p + 1}.{n:02d}"
            key, value, headers = event(
                f"cost-{p}-{n}", "pmo.project.cost_recorded", "P-1", {
                    "amount": amount, "currency": "EUR", "incurred_on": "2026-02-01",
                    "category": "labour", "reference": f"inv-{p}-{n}"})
            futures.append(producer.send(inbound, key=key, value=value, headers=headers))
            with lock:
                amounts.append(Decimal(amount))
        producer.flush()
        for f in futures:
            f.get(timeout=30)
        producer.close()

    threads = [threading.Thread(target=publish, args=(p,)) for p in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected_version = 3 + producers * per_producer  # proposed, approved, started, costs

    def project() -> dict[str, Any]:
        response = reader.get("/v1/projects/P-1", headers=ALL)
        return response.json() if response.status_code == 200 else {}  # type: ignore[no-any-return]

    wait_for(lambda: project().get("version") == expected_version,
             "every cost in the project view", timeout_s=120, workers=workers)
    history = reader.get("/v1/projects/P-1/history?limit=1000", headers=ALL).json()["items"]
    assert [e["version"] for e in history] == list(range(1, expected_version + 1))
    assert sorted(Decimal(e["data"]["amount"]) for e in history
                  if e["type"] == "pmo.project.cost_recorded") == sorted(amounts)
    assert Decimal(project()["actual_cost"]) == sum(amounts)
    assert refusals(reader) == {"dlq": 0, "rejected": 0}
    assert_caught_up(reader, ALL, timeout_s=60)

