"""Property (issue 9): hostile CloudEvents through ``POST /v1/events``, on a real SQLite
and a real PostgreSQL store.

Every event ends accepted, duplicate, invalid or rejected, with a reason for the last
two, never a 5xx; every refusal is in ``GET /v1/rejections``; afterwards every
projection has lag 0 and every read route answers 200.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pmo.settings import Settings
from tests.e2e.conftest import KEYS, PUB, auth, running_client
from tests.hostile import OUTCOMES, assert_caught_up, encode, hostile_events, setup_events

ALL = auth("all-key")
EXAMPLES = 300  # per backend; each a batch of up to 8 events, or one event alone
SINGLE_STATUS = {200: "duplicate", 201: "accepted", 400: "invalid", 409: "rejected",
                 422: "invalid"}


@pytest.fixture
def client(tmp_path: Path, store_url: str) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", api_keys=KEYS, event_store_url=store_url,
                        projection_store_url=store_url, max_body_bytes=2 * 1024 * 1024,
                        ingest_batch_size=50, poll_interval_ms=5,
                        _env_file=None)  # type: ignore[call-arg]
    with running_client(settings) as client:
        yield client


def _post(client: TestClient, body: Any) -> Any:
    return client.post("/v1/events", content=encode(body),
                       headers={**PUB, "Content-Type": "application/json"})


def test_hostile_cloudevents_never_answer_5xx_nor_stop_a_view(client: TestClient) -> None:
    outcomes: Counter[str] = Counter()

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(hostile_events(), min_size=1, max_size=8), st.booleans())
    def publish(events: list[dict[str, Any]], alone: bool) -> None:
        if alone:
            response = _post(client, events[0])
            assert response.status_code in SINGLE_STATUS, response.text[:500]
            outcome = SINGLE_STATUS[response.status_code]
            if outcome in ("invalid", "rejected"):
                assert response.json()["reason"]
            outcomes[outcome] += 1
            return
        response = _post(client, events)
        assert response.status_code == 200, response.text[:500]
        results = response.json()["results"]
        assert len(results) == len(events)
        for result in results:
            assert result["status"] in OUTCOMES, result
            if result["status"] in ("invalid", "rejected"):
                assert result["reason"], result
            outcomes[result["status"]] += 1

    setup = _post(client, setup_events()).json()["results"]
    assert [r["status"] for r in setup] == ["accepted"] * len(setup), setup
    publish()
    assert outcomes["accepted"] > 0 and outcomes["invalid"] > 0 and outcomes["rejected"] > 0
    read = assert_caught_up(client, ALL)
    assert read["portfolios"] > 0
    logged = client.get("/v1/rejections?limit=1", headers=ALL).json()["counts"]
    assert logged == {"dlq": outcomes["invalid"], "rejected": outcomes["rejected"]}
    print(f"hostile HTTP: {dict(outcomes)}, views read {read}")  # figures for the docs
