"""Outside trials of ``as_of`` / ``valid_at`` over HTTP, on SQLite and PostgreSQL stores.

``GET /v1/portfolios`` and ``GET /v1/managers`` used to ignore both parameters: an
auditor asking for the portfolios as of last month got today's figures, with nothing to
say the instant was not honoured. They now answer each item as its route by id does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from api.deps import Services
from pmo.settings import Settings
from tests.conftest import drop_postgres_schema, fresh_postgres_schema
from tests.e2e.conftest import (
    AUDIT,
    KEYS,
    VIEW,
    approval,
    assert_problem,
    cloud_event,
    cost,
    portfolio,
    proposal,
    publish_and_wait,
    running,
)


@pytest.fixture(params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[TestClient,
                                                                             Services]]:
    urls: dict[str, str] = {}
    if request.param == "postgres":
        urls = {"event_store_url": fresh_postgres_schema(),
                "projection_store_url": fresh_postgres_schema()}
    config = Settings(data_dir=tmp_path / "data", api_keys=KEYS, poll_interval_ms=5,
                      _env_file=None, **urls)  # type: ignore[call-arg]
    try:
        with running(config) as services, TestClient(
                create_app(services), raise_server_exceptions=False) as client:
            yield client, services
    finally:
        for url in urls.values():
            drop_postgres_schema(url)


post = publish_and_wait


def manager(key: str) -> dict[str, Any]:
    return cloud_event("pmo.manager.registered", key, {"name": f"Manager {key}",
                                                       "capacity": 3}, id_=f"mgr-{key}")


def at(event: dict[str, Any], when: str) -> dict[str, Any]:
    return {**event, "time": when}


def history(client: TestClient, services: Services) -> list[datetime]:
    """Two portfolios and a manager, recorded one after another; the instants between."""
    june = "2026-06-10T09:00:00Z"
    marks = [datetime.now(UTC)]
    marks.append(post(client, services, at(portfolio("PF-A"), june), at(manager("M-1"), june)))
    marks.append(post(client, services, at(proposal("X1", "PF-A"), june),
                      at(approval("X1"), june), at(cost("X1", "100.00", 1), june)))
    marks.append(post(client, services, at(portfolio("PF-B"), june), at(manager("M-2"), june),
                      at(cost("X1", "40.00", 2), "2026-06-20T00:00:00Z")))
    time.sleep(1.1)  # every mark is final (api.consistency.SETTLE_S)
    return marks


def by_id(client: TestClient, collection: str, ident: str,
          params: dict[str, str]) -> dict[str, Any] | None:
    answer = client.get(f"/v1/{collection}/{ident}", params=params, headers=AUDIT)
    if answer.status_code == 404:
        return None
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def listed(client: TestClient, collection: str, params: dict[str, str],
           limit: int = 1) -> list[dict[str, Any]]:
    """Every item of the list, a page of ``limit`` at a time."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = client.get(f"/v1/{collection}", headers=AUDIT, params={
            **params, "limit": str(limit), **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def test_the_lists_answer_as_of_and_valid_at_as_their_routes_by_id(
        served: tuple[TestClient, Services]) -> None:
    client, services = served
    marks = history(client, services)
    keys = {"portfolios": ("portfolio_id", ["PF-A", "PF-B"]),
            "managers": ("manager_id", ["M-1", "M-2"])}
    asks = [{"as_of": m.isoformat()} for m in marks]
    asks += [{"valid_at": "2026-06-15T00:00:00Z"},
             {"valid_at": "2026-06-30T00:00:00Z", "as_of": marks[2].isoformat()}]
    for collection, (field, idents) in keys.items():
        for params in asks:
            expected = [v for v in (by_id(client, collection, i, params) for i in idents) if v]
            for limit in (1, 50):
                assert listed(client, collection, params, limit) == expected, (
                    collection, params, limit)
        # Before the first event nothing existed; after the last, both.
        assert listed(client, collection, {"as_of": marks[0].isoformat()}) == []
        assert [i[field] for i in listed(client, collection,
                                         {"as_of": marks[3].isoformat()})] == idents
    # valid_at is a viewer's, as_of an auditor's, bad instants a 422, as on the routes by id.
    assert client.get("/v1/portfolios", params={"valid_at": "2026-06-30T00:00:00Z"},
                      headers=VIEW).status_code == 200
    assert_problem(client.get("/v1/managers", params={"as_of": marks[1].isoformat()},
                              headers=VIEW), 403)
    for bad in ("2026-06-30", "x", "9999-12-31T00:00:00Z"):
        assert_problem(client.get("/v1/portfolios", params={"as_of": bad}, headers=AUDIT), 422)
        assert_problem(client.get("/v1/managers", params={"valid_at": bad}, headers=VIEW), 422)
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert_problem(client.get("/v1/portfolios", params={"as_of": future}, headers=AUDIT), 422)


OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59)


@settings(max_examples=25, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_spelling_of_an_instant_gets_the_same_bytes_and_they_never_change(
        served: tuple[TestClient, Services], data: st.DataObject) -> None:
    client, services = served
    # One history per store (the fixture lives for every example of this test).
    marks: list[datetime] = services.extras.setdefault("test_marks", [])
    if not marks:
        marks += history(client, services)
    # Around each recording instant, to the microsecond, spelt in any offset.
    base = data.draw(st.sampled_from(marks))
    instant = base + timedelta(microseconds=data.draw(st.integers(-2, 2)))
    minutes = data.draw(OFFSETS)
    spelt = instant.astimezone(timezone(timedelta(minutes=minutes))).isoformat()
    if data.draw(st.booleans()):  # nanoseconds: truncated to the store's microseconds
        spelt = spelt.replace("+", "999+", 1) if "." in spelt and "+" in spelt else spelt
    path = data.draw(st.sampled_from(["/v1/portfolios/PF-A", "/v1/projects/X1",
                                      "/v1/managers/M-1", "/v1/portfolios", "/v1/projects"]))
    plain = client.get(path, params={"as_of": instant.isoformat()}, headers=AUDIT)
    other = client.get(path, params={"as_of": spelt}, headers=AUDIT)
    assert plain.status_code in (200, 404) and other.status_code == plain.status_code
    if plain.status_code == 200:
        assert other.content == plain.content, spelt
    # Later events, late valid times among them, never change an answer already given.
    n = services.extras["test_costs"] = services.extras.get("test_costs", 1000) + 1
    post(client, services, at(cost("X1", "1.00", n), "2026-06-01T00:00:00Z"))
    again = client.get(path, params={"as_of": instant.isoformat()}, headers=AUDIT)
    assert (again.status_code, again.content) == (plain.status_code, plain.content)
