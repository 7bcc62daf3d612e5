"""Probes and metrics, answered without a key."""

from __future__ import annotations

import orjson
from fastapi.testclient import TestClient

from tests.e2e.conftest import PUB, VIEW, portfolio, proposal


def test_healthz_is_ok(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_is_ready_when_both_stores_answer(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"event_store": "ok", "projection_store": "ok"}


def test_metrics_count_requests_ingest_outcomes_and_projection_positions(
        client: TestClient) -> None:
    client.post("/v1/events", content=orjson.dumps([portfolio(), portfolio(), proposal(
        "P-1", portfolio_id="PF-404")]), headers={**PUB, "Content-Type": "application/json"})
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = set(response.text.splitlines())
    assert 'pmo_http_requests_total{method="POST",route="/v1/events",status="200"} 1.0' in lines
    assert 'pmo_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in lines
    assert 'pmo_ingest_events_total{status="accepted"} 1.0' in lines
    assert 'pmo_ingest_events_total{status="duplicate"} 1.0' in lines
    assert 'pmo_ingest_events_total{status="rejected"} 1.0' in lines
    positions = [line for line in lines if line.startswith("pmo_projection_position{")]
    assert positions, response.text
    lags = [line for line in lines if line.startswith("pmo_projection_lag{")]
    assert lags and all(line.endswith(" 0.0") for line in lags), lags


def test_openapi_documents_the_event_route_with_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/v1/events"]["post"]
    content = post["requestBody"]["content"]
    assert "application/cloudevents-batch+json" in content
    assert content["application/cloudevents+json"]["examples"]
    assert {"201", "200", "400", "409", "413", "422"} <= set(post["responses"])


def test_latency_is_a_histogram_by_route_template_with_ingest_by_type(
        client: TestClient) -> None:
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    client.post("/v1/events", json=portfolio(), headers=PUB)
    for _ in range(5):
        client.get("/v1/portfolios/PF-1", headers=VIEW)
    client.get("/v1/portfolios/nope", headers=VIEW)
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    latency = families["pmo_http_request_duration_seconds"]
    assert latency.type == "histogram"
    samples = [s for s in latency.samples
               if s.labels.get("route") == "/v1/portfolios/{portfolio_id}"]
    buckets = sorted((float(s.labels["le"]), s.value) for s in samples
                     if s.name.endswith("_bucket") and s.labels["status"] == "200")
    assert len(buckets) >= 10 and buckets[-1] == (float("inf"), 5.0)
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative
    assert {s.labels["status"] for s in samples} == {"200", "404"}
    assert not [s for s in latency.samples if "nope" in s.labels.get("route", "")]
    by_type = families["pmo_ingest_events_by_type"]
    assert any(s.labels == {"status": "accepted", "type": "pmo.portfolio.opened"}
               and s.value == 1.0 for s in by_type.samples)


def test_the_grafana_dashboard_reads_only_metrics_that_exist(client: TestClient) -> None:
    import json  # noqa: PLC0415
    import re  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    client.post("/v1/events", json=portfolio(), headers=PUB)
    exposed = set()
    for family in text_string_to_metric_families(client.get("/metrics").text):
        exposed |= {sample.name for sample in family.samples}
    dashboard = json.loads((Path(__file__).parents[2] / "deploy" / "grafana" /
                            "pmo-ledger.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 8
    used = {name for e in exprs for name in re.findall(r"\b(pmo_[a-z_]+)", e)}
    assert used and used <= exposed, used - exposed
