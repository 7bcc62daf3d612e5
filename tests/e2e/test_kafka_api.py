"""The whole Kafka deployment over HTTP: ``pmo serve`` in Kafka mode with the three workers.

POST /v1/events answers ``queued`` (202) once the broker has the event; the views
come from the consumers; a domain refusal appears in GET /v1/rejections.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.workload import event
from tests.kafka_support import Worker, kafka_settings, wait_for

pytestmark = pytest.mark.kafka

KEY = "e2e-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
OPEN = event(1, "pmo.portfolio.opened", "PF-K", {
    "name": "Kafka PMO", "pmo_type": "controlling", "currency": "EUR",
    "budget_envelope": "500000", "owner": "pmo"})
PROPOSE = event(2, "pmo.project.proposed", "P-K1", {
    "portfolio_id": "PF-K", "name": "One", "sponsor": "cfo", "budget_requested": "120000",
    "planned_start": "2026-01-01", "planned_finish": "2026-06-30"})
APPROVE = event(3, "pmo.project.approved", "P-K1", {"approved_budget": "100000",
                                                    "approver": "board"})
OVER = event(4, "pmo.project.approved", "P-K404", {"approved_budget": "1", "approver": "x"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def get(client: httpx.Client, path: str) -> Any:
    response = client.get(path, headers=AUTH)
    return response.json() if response.status_code == 200 else None


def test_events_posted_in_kafka_mode_are_queued_and_become_visible(tmp_path: Path) -> None:
    settings = kafka_settings(tmp_path, park_seconds=1)  # P-K404 waits 1 s, then is rejected
    port = free_port()
    serve = Worker(settings, tmp_path, "serve", "--port", str(port), "--no-access-log")
    serve.env["PMO_API_KEYS"] = f'{{"{KEY}": ["publisher", "viewer", "auditor"]}}'
    serve.stop()
    serve.start()
    ports = {name: free_port() for name in ("ingest", "relay", "consume")}
    workers = [serve, Worker(settings, tmp_path, "ingest", "--metrics-port", str(ports["ingest"])),
               Worker(settings, tmp_path, "relay", "--metrics-port", str(ports["relay"])),
               Worker(settings, tmp_path, "consume", "--all", "--metrics-port",
                      str(ports["consume"]))]
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        wait_for(lambda: _up(client), "the API", workers=workers)
        single = client.post("/v1/events", json=OPEN, headers=AUTH)
        assert single.status_code == 202 and single.json()["status"] == "queued"
        time.sleep(0.5)  # the portfolio first: Kafka orders per subject only
        batch = client.post("/v1/events", json=[PROPOSE, APPROVE, OVER], headers=AUTH)
        assert [r["status"] for r in batch.json()["results"]] == ["queued"] * 3
        invalid = client.post("/v1/events", json={**OPEN, "type": "pmo.nothing"}, headers=AUTH)
        assert invalid.status_code in (400, 422)

        wait_for(lambda: (get(client, "/v1/portfolios/PF-K") or {}).get(
            "approved_budget") == "100000", "the approval in the portfolio view",
            workers=workers)
        project = get(client, "/v1/projects/P-K1")
        assert project["state"] == "approved" and project["approved_budget"] == "100000"
        wait_for(lambda: len((get(client, "/v1/rejections") or {}).get("items", [])) >= 2,
                 "the rejections", workers=workers)
        items = get(client, "/v1/rejections")["items"]
        kinds = sorted(i["kind"] for i in items)
        assert kinds == ["dlq", "rejected"]
        rejected = next(i for i in items if i["kind"] == "rejected")
        assert rejected["subject"] == "P-K404" and "P-K404" in rejected["reason"]
        events_file = tmp_path / "more.jsonl"
        events_file.write_bytes(orjson.dumps({**OPEN, "id": "pub-1", "subject": "PF-PUB"}))
        published = subprocess.run(
            [sys.executable, "-m", "pmo.cli", "publish", str(events_file), "--api",
             f"http://127.0.0.1:{port}"], env={**serve.env, "PMO_PUBLISH_API_KEY": KEY},
            capture_output=True, text=True, timeout=60, check=True)
        assert "'queued': 1" in published.stdout
        wait_for(lambda: get(client, "/v1/portfolios/PF-PUB") is not None,
                 "the portfolio published with pmo publish --api", workers=workers)
        statuses = {p["name"]: p for p in get(client, "/v1/projections")["items"]}
        assert {"portfolios", "projects", "audit"} <= set(statuses)
        # opened, proposed, approved, the portfolio's record of the approved budget, PF-PUB
        assert statuses["audit"]["position"] == 5 and statuses["audit"]["lag"] == 0
        pipeline_at_zero(client, ports, workers)
        reads_its_writes(client, workers)
    finally:
        client.close()
        for w in workers:
            w.stop()


def pipeline_at_zero(client: httpx.Client, ports: dict[str, int], workers: list[Worker],
                     ) -> None:
    """GET /v1/projections, the API's and every worker's /metrics: all caught up."""
    wait_for(lambda: get(client, "/v1/projections")["pipeline"] == {
        "inbound": 0, "relay": 0, "parked": 0},
             "the pipeline at 0", workers=workers)
    api_metrics = client.get("/metrics").text
    assert "pmo_pipeline_inbound 0\n" in api_metrics
    assert "pmo_pipeline_relay 0\n" in api_metrics
    assert 'pmo_projection_lag{projection="audit"} 0' in api_metrics
    expected = {"ingest": ("pmo_pipeline_inbound", ()), "relay": ("pmo_pipeline_relay", ()),
                "consume": ("pmo_projection_lag", (("projection", "audit"),))}
    for name, port_of in ports.items():
        worker_url = f"http://127.0.0.1:{port_of}"
        assert httpx.get(f"{worker_url}/healthz", timeout=10).status_code == 200
        wait_for(lambda u=worker_url, n=name: scrape(u).get(  # type: ignore[misc]
            expected[n]) == 0, f"{name}'s /metrics", workers=workers)
    worker_metrics(ports)


Sample = tuple[str, tuple[tuple[str, str], ...]]


def scrape(url: str) -> dict[Sample, float]:
    """A worker's /metrics read with prometheus_client's own parser (the standard format)."""
    answer = httpx.get(f"{url}/metrics", timeout=10)
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.text) for s in family.samples}


def worker_metrics(ports: dict[str, int]) -> None:
    """The registry every worker serves: its own families, and the process's."""
    ingest, relay, consume = (scrape(f"http://127.0.0.1:{ports[n]}")
                              for n in ("ingest", "relay", "consume"))
    for name, samples in (("ingest", ingest), ("relay", relay), ("consume", consume)):
        assert samples[("pmo_worker_up", (("worker", name),))] == 1
        assert samples[("process_cpu_seconds_total", ())] > 0
        assert samples[("process_resident_memory_bytes", ())] > 0
    # Outcomes by type: the two portfolios opened, the approval of a project that exists.
    accepted = ("status", "accepted")
    assert ingest[("pmo_ingest_events_by_type_total",
                   (accepted, ("type", "pmo.portfolio.opened")))] == 2
    assert ingest[("pmo_ingest_events_by_type_total",
                   (accepted, ("type", "pmo.project.approved")))] == 1
    assert ingest[("pmo_ingest_events_total", (accepted,))] == 4
    assert ingest[("pmo_ingest_store_duration_seconds_count", ())] >= 1
    assert consume[("pmo_projection_position", (("projection", "audit"),))] == 5
    assert consume[("pmo_projection_apply_duration_seconds_count",
                    (("projection", "audit"),))] >= 1
    assert relay[("pmo_relay_position", ())] == 5


def reads_its_writes(client: httpx.Client, workers: list[Worker]) -> None:
    """Publish, poll the receipt, read with min_position: the write is in every answer."""
    for n in range(3):  # read your writes across processes: receipt, then min_position
        proposal = event(10 + n, "pmo.project.proposed", f"P-RYW{n}", {
            "portfolio_id": "PF-K", "name": "Read", "sponsor": "cfo",
            "budget_requested": "1000", "planned_start": "2026-01-01",
            "planned_finish": "2026-06-30"})
        assert client.post("/v1/events", json=proposal, headers=AUTH).status_code == 202
        key = {"source": proposal["source"], "id": proposal["id"]}
        wait_for(lambda k=key: client.get("/v1/receipts", params=k,  # type: ignore[misc]
                                          headers=AUTH).json()["status"] != "pending",
                 "the receipt", workers=workers)
        stored = client.get("/v1/receipts", params=key, headers=AUTH).json()
        assert stored["status"] == "stored", stored
        answered = 0
        while answered < 3:  # a 503 says "retry"; every answer given holds the write
            read = client.get(f"/v1/projects/P-RYW{n}",
                              params={"min_position": stored["position"]}, headers=AUTH)
            assert read.status_code in (200, 503), read.text
            if read.status_code == 200:
                assert read.json()["state"] == "proposed"
                answered += 1
            else:
                assert read.headers["Retry-After"]


def _up(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False
