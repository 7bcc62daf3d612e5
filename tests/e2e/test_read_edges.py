"""The read side's edges (issue 9), as classes: every list route's cursor, every time
parameter, ``q``, every id percent-encoded, HEAD, 405, redirects, the view cache's bound,
and what ``GET /v1/projections`` shows a viewer. Routes are taken from the app's own
OpenAPI document, so a list route added later is covered without editing this file."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import Services
from api.routers.projections import GENERIC_ERROR
from pmo.settings import Settings
from tests.e2e.conftest import (
    AUDIT,
    KEYS,
    PUB,
    VIEW,
    assert_problem,
    cloud_event,
    portfolio,
    proposal,
    running,
)

CACHE_BYTES = 50_000
ODD_IDS = ["ACME/PRJ-1", "a b", "50%", "q?x", "h#1", "Zürich-✓", "A/history", "%2F"]


def b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


HOSTILE_CURSORS = ["²", "9" * 5000, '{"a": 1}', str(2**63), str(2**64 + 1), "-1", "1.5",
                   "abc", " 1", "١٢", b64({"a": 1}), b64(["x", {"a": 1}]), b64([2**70, "k"]),
                   b64([1, 2, 3]), b64(None), b64(["x"] * 2)[:-2] + "!!", "%", "\u202e1"]
HOSTILE_INSTANTS = ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00",
                    "1969-12-31T23:59:59Z", "9999-12-30T00:00:01Z", "2026-01-01T00:00:00",
                    "2026-01-01", "yesterday", "2026-13-01T00:00:00Z", "9" * 5000, "",
                    "2026-01-01T00:00:00+24:00"]
TIME_PARAMS = {"as_of", "since", "until", "valid_at", "reported_at"}


@pytest.fixture
def settings(store_url: str, tmp_path: Path) -> Settings:
    """SQLite stores, or both stores in one fresh PostgreSQL schema (LIKE, NUL, cursors)."""
    projection_url = (store_url if store_url.startswith("postgresql")
                      else f"sqlite:///{tmp_path / 'projections.sqlite'}")
    return Settings(data_dir=tmp_path / "data", event_store_url=store_url,
                    projection_store_url=projection_url, api_keys=KEYS, poll_interval_ms=5,
                    view_cache_bytes=CACHE_BYTES, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    with running(settings) as services:
        yield services


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        events = [portfolio(), portfolio("PF/2"), *(proposal(i) for i in ODD_IDS),
                  proposal("A_1"), proposal("A%2"), proposal("AB1"),
                  cloud_event("pmo.manager.registered", "M/1", {"name": "Mo", "capacity": 2},
                              id_="reg-M/1"),
                  cloud_event("pmo.manager.registered", "M 2", {"name": "Ma", "capacity": 1},
                              id_="reg-M 2"),
                  cloud_event("pmo.program.launched", "G 1", {"portfolio_id": "PF-1",
                                                              "name": "G"}, id_="launch-G")]
        answer = client.post("/v1/events", json=events, headers=PUB)
        assert answer.status_code == 200, answer.text
        assert {r["status"] for r in answer.json()["results"]} == {"accepted"}
        # The answer waits a little for the views; a loaded machine may need longer.
        top = max(r["position"] for r in answer.json()["results"])
        assert services.runner is not None and services.runner.wait_for(top, 30)
        yield client


def get_routes(client: TestClient) -> list[tuple[str, list[str]]]:
    """(path with ids filled in, query parameter names) of every GET route."""
    ids = {"portfolio_id": "PF-1", "project_id": "A_1", "program_id": "G 1",
           "manager_id": "M/1"}
    out = []
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        if "get" not in operations:
            continue
        params = operations["get"].get("parameters", [])
        filled = path
        for p in params:
            if p["in"] == "path":
                filled = filled.replace("{" + p["name"] + "}",
                                        quote(ids.get(p["name"], "x"), safe=""))
        out.append((filled, [p["name"] for p in params if p["in"] == "query"]))
    return out


def required_params(client: TestClient) -> list[tuple[str, str]]:
    """(path as ``get_routes`` fills it, name) of every required query parameter."""
    paths = client.get("/openapi.json").json()["paths"]
    out = []
    for (filled, _), (_, operations) in zip(get_routes(client), [
            (p, o) for p, o in paths.items() if "get" in o], strict=True):
        out += [(filled, p["name"]) for p in operations["get"].get("parameters", [])
                if p["in"] == "query" and p.get("required")]
    return out


def test_every_cursor_of_every_list_route_is_validated(client: TestClient) -> None:
    listed = [path for path, query in get_routes(client) if "cursor" in query]
    assert {"/v1/projects", "/v1/audit", "/v1/projects/A_1/history", "/v1/rejections",
            "/v1/portfolios", "/v1/managers"} <= set(listed)
    for path in listed:
        for cursor in HOSTILE_CURSORS:
            answer = client.get(path, params={"cursor": cursor}, headers=AUDIT)
            assert answer.status_code != 500, (path, cursor, answer.text)
            assert_problem(answer, 422)


def test_the_cursors_given_out_lead_to_the_next_page(client: TestClient) -> None:
    for path in ("/v1/projects", "/v1/portfolios", "/v1/managers", "/v1/audit"):
        seen: list[Any] = []
        cursor = None
        for _ in range(40):
            params: dict[str, Any] = {"limit": 1} | ({"cursor": cursor} if cursor else {})
            page = client.get(path, params=params, headers=AUDIT)
            assert page.status_code == 200, (path, page.text)
            seen += page.json()["items"]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert len(seen) > 1 and cursor is None, path
    sorted_by = client.get("/v1/projects", params={"limit": 2, "sort": "-approved_budget"},
                           headers=VIEW).json()["next_cursor"]
    assert client.get("/v1/projects", params={"cursor": sorted_by, "sort": "-approved_budget"},
                      headers=VIEW).status_code == 200
    # A cursor of one sort is not read as one of another (its value has the wrong type).
    assert_problem(client.get("/v1/projects", params={"cursor": sorted_by, "sort": "name"},
                              headers=VIEW), 422)


def test_every_time_parameter_needs_an_offset_and_the_contract_range(
        client: TestClient) -> None:
    timed = [(path, name) for path, query in get_routes(client) for name in query
             if name in TIME_PARAMS]
    assert {"as_of", "since", "until"} <= {name for _, name in timed}
    # A route that requires two instants (restatements) gets the other one good.
    required = {(path, name) for path, name in required_params(client) if name in TIME_PARAMS}
    # Now, not a fixed instant: an as_of later than now is refused (no answer could be final).
    good_instant = datetime.now(UTC).isoformat()
    for path, name in timed:
        others = {n: good_instant for p, n in required if p == path and n != name}
        for instant in HOSTILE_INSTANTS:
            answer = client.get(path, params={**others, name: instant}, headers=AUDIT)
            assert answer.status_code in (400, 422), (path, name, instant, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
        good = client.get(path, params={**others, name: good_instant}, headers=AUDIT)
        assert good.status_code == 200, (path, name, good.text)


def test_q_is_literal_and_at_most_200_characters(client: TestClient) -> None:
    def found(q: str) -> set[str]:
        answer = client.get("/v1/projects", params={"q": q}, headers=VIEW)
        assert answer.status_code == 200, answer.text
        return {p["project_id"] for p in answer.json()["items"]}

    assert found("a_1") == {"A_1"}  # not "any one character"
    assert found("a%2") == {"A%2"}
    assert found("%") == {"A%2", "50%", "%2F"}  # not "anything"
    assert found("\\") == set()
    assert found("x" * 200) == set()
    for q in ("x" * 201, "%" * 201, "a" * 50_000):
        assert_problem(client.get("/v1/projects", params={"q": q}, headers=VIEW), 422)


@pytest.mark.parametrize("key", ODD_IDS)
def test_every_accepted_id_is_reachable_percent_encoded(client: TestClient, key: str) -> None:
    encoded = quote(key, safe="")
    view = client.get(f"/v1/projects/{encoded}", headers=VIEW)
    assert view.status_code == 200 and view.json()["project_id"] == key, view.text
    again = client.get(f"/v1/projects/{encoded}", headers=VIEW)  # from the cache's fast path
    assert again.status_code == 200 and again.json()["project_id"] == key
    history = client.get(f"/v1/projects/{encoded}/history", headers=AUDIT)
    assert history.status_code == 200 and history.json()["project_id"] == key
    as_of = client.get(f"/v1/projects/{encoded}",
                       params={"as_of": datetime.now(UTC).isoformat()}, headers=AUDIT)
    assert as_of.status_code == 200 and as_of.json()["project_id"] == key
    future = client.get(f"/v1/projects/{encoded}",  # no answer for it could be final
                        params={"as_of": "2999-01-01T00:00:00Z"}, headers=AUDIT)
    assert_problem(future, 422)


def test_ids_of_other_views_are_reachable_too(client: TestClient) -> None:
    assert client.get("/v1/managers/M%2F1", headers=VIEW).json()["manager_id"] == "M/1"
    assert client.get("/v1/programs/G%201", headers=VIEW).json()["program_id"] == "G 1"
    assert client.get("/v1/portfolios/PF%2F2", headers=VIEW).json()["portfolio_id"] == "PF/2"
    assert_problem(client.get("/v1/projects/A%2F1", headers=VIEW), 404)
    assert_problem(client.get("/v1/projects/a%00b", headers=VIEW), 404)
    assert_problem(client.get("/v1/projects?manager=a%00b", headers=VIEW), 422)


def test_head_works_wherever_get_does(client: TestClient) -> None:
    for path, headers in (("/healthz", {}), ("/v1/projects/A_1", VIEW),
                          ("/v1/projects", VIEW), ("/metrics", {})):
        get = client.get(path, headers=headers)
        head = client.head(path, headers=headers)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b"" and head.headers["content-type"] == get.headers[
            "content-type"]


def test_405_names_the_allowed_methods_as_a_problem(client: TestClient) -> None:
    answer = client.delete("/healthz")
    assert_problem(answer, 405)
    assert {m.strip() for m in answer.headers["allow"].split(",")} == {"GET", "HEAD"}
    answer = client.get("/v1/events", headers=PUB)
    assert_problem(answer, 405)
    assert answer.headers["allow"] == "POST"


def test_no_redirect_echoes_a_foreign_host(client: TestClient) -> None:
    for path in ("/healthz/", "/v1/projects/", "/v1/nothing", "//evil.example/x"):
        answer = client.get(path, headers={"Host": "evil.example", **VIEW},
                            follow_redirects=False)
        assert_problem(answer, 404)
        assert "location" not in answer.headers
        assert "evil.example" not in answer.text or path.startswith("//")


def test_the_view_cache_stays_within_its_byte_bound(client: TestClient,
                                                    services: Services) -> None:
    cache = services.projections.view_cache
    assert cache.max_bytes == CACHE_BYTES
    served = 0
    for n in range(100):  # 100 list requests, each its own cache key, most of them large
        answer = client.get("/v1/projects", params={"q": "a"[:n % 2], "limit": 100 + n},
                            headers=VIEW)
        assert answer.status_code == 200
        served += len(answer.content)
        assert cache.bytes <= CACHE_BYTES
    assert served > 5 * CACHE_BYTES  # so the bound, not the traffic, kept the cache small
    assert len(cache) < 100


def test_a_viewer_never_reads_raw_error_text_of_the_projections(
        client: TestClient, services: Services) -> None:
    # A real failure: the projects' table vanishes under the runner.
    with services.projections.db.transaction() as tx:
        tx.execute("DROP TABLE pv_projects")
    client.post("/v1/events", json=[proposal("AFTER")], headers=PUB)
    viewer = auditor = None
    for _ in range(200):
        viewer = client.get("/v1/projections", headers=VIEW).json()
        auditor = client.get("/v1/projections", headers=AUDIT).json()
        if any("error" in item for item in auditor["items"]):
            break
        services.runner.wake()  # type: ignore[union-attr]
    assert auditor is not None and viewer is not None
    errors = [item["error"] for item in auditor["items"] if "error" in item]
    assert errors and any("pv_projects" in e for e in errors)  # the detail, for auditors
    shown = orjson.dumps(viewer).decode()
    assert "pv_projects" not in shown and GENERIC_ERROR in shown
