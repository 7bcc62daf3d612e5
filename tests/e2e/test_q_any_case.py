"""``q`` on the project list gives the same answer on SQLite and PostgreSQL, whatever the
case of a non-ASCII letter (found by the black-box run: ``q=été`` found ``Café Été`` on
PostgreSQL only, SQLite's LOWER folding ASCII alone)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pmo.settings import Settings
from projections.db import fold
from tests.e2e.conftest import KEYS, auth, running_client

ALL = auth("all-key")
NAMES = ["Café Été", "STRASSE", "straße", "İstanbul", "ǅemal", "ΟΔΟΣ Ωmega", "ﬁnance",
         "Ärger Über Öl", "ÇA VA", "Łódź", "Ǆungla", "\uff21\uff22\uff23", "plain ascii"]


@pytest.fixture
def client(tmp_path: Path, store_url: str) -> Iterator[TestClient]:
    settings_ = Settings(data_dir=tmp_path / "data", api_keys=KEYS, event_store_url=store_url,
                         projection_store_url=store_url, poll_interval_ms=5,
                         _env_file=None)  # type: ignore[call-arg]
    with running_client(settings_) as client:
        events = [{"specversion": "1.0", "id": "open", "source": "urn:q", "subject": "PF-Q",
                   "type": "pmo.portfolio.opened", "time": "2026-03-02T09:30:00Z",
                   "data": {"name": "p", "pmo_type": "supportive", "currency": "EUR",
                            "budget_envelope": "1000", "owner": "o"}}]
        events += [{"specversion": "1.0", "id": f"p{n}", "source": "urn:q", "subject": f"Q-{n}",
                    "type": "pmo.project.proposed", "time": "2026-03-02T09:30:00Z",
                    "data": {"portfolio_id": "PF-Q", "name": name, "sponsor": "s",
                             "budget_requested": "1", "planned_start": "2026-01-01",
                             "planned_finish": "2026-02-01"}} for n, name in enumerate(NAMES)]
        stored = client.post("/v1/events", json=events, headers=ALL).json()["results"]
        assert {r["status"] for r in stored} == {"accepted"}
        last = max(r["position"] for r in stored)
        assert client.get("/v1/projects", params={"min_position": last},
                          headers=ALL).status_code == 200
        yield client


@st.composite
def queries(draw: st.DrawFn) -> str:
    """A part of a name, each letter's case flipped or not."""
    name = draw(st.sampled_from(NAMES))
    start = draw(st.integers(0, len(name) - 1))
    part = name[start:draw(st.integers(start + 1, len(name)))]
    flips = draw(st.lists(st.booleans(), min_size=len(part), max_size=len(part)))
    return "".join(c.swapcase() if flip else c for c, flip in zip(part, flips, strict=True))


@settings(max_examples=30, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(q=queries(), valid=st.booleans())
def test_q_matches_whatever_the_case_and_the_same_on_both_stores(
        client: TestClient, q: str, valid: bool) -> None:
    params = {"q": q, "limit": "100"} | ({"valid_at": "2026-06-01T00:00:00Z"} if valid else {})
    response = client.get("/v1/projects", params=params, headers=ALL)
    assert response.status_code == 200, response.text
    found = sorted(item["name"] for item in response.json()["items"])
    assert found == sorted(name for n, name in enumerate(NAMES)
                           if fold(q) in fold(name) or fold(q) in fold(f"Q-{n}")), q


def test_the_case_found_first(client: TestClient) -> None:
    for q in ("été", "ÉTÉ", "ωMEGA", "istanbul", "ärger"):
        items = client.get("/v1/projects", params={"q": q}, headers=ALL).json()["items"]
        assert len(items) == 1, q
