"""API keys and roles over HTTP: 401 without a valid key, 403 without the role."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import Services
from tests.e2e.conftest import AUDIT, PUB, VIEW, assert_problem, auth, portfolio

PROTECTED = [("POST", "/v1/events", "publisher"),
             ("GET", "/v1/projects/P-1/history", "auditor")]


@pytest.mark.parametrize(("method", "path", "role"), PROTECTED)
def test_no_key_is_401(client: TestClient, method: str, path: str, role: str) -> None:
    response = client.request(method, path, json=portfolio())
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path", "role"), PROTECTED)
def test_an_unknown_key_is_401(client: TestClient, method: str, path: str, role: str) -> None:
    assert_problem(client.request(method, path, json=portfolio(), headers=auth("nope")), 401)


@pytest.mark.parametrize(("method", "path", "role"), PROTECTED)
def test_a_key_without_the_role_is_403(client: TestClient, method: str, path: str,
                                       role: str) -> None:
    wrong = {"publisher": [VIEW, AUDIT, auth("admin-key")],
             "auditor": [PUB, VIEW, auth("admin-key")]}[role]
    for headers in wrong:
        body = assert_problem(client.request(method, path, json=portfolio(), headers=headers),
                              403)
        assert role in body["detail"]


def test_a_non_bearer_scheme_is_401(client: TestClient) -> None:
    response = client.post("/v1/events", json=portfolio(),
                           headers={"Authorization": "Basic cHViLWtleTo="})
    assert_problem(response, 401)


def test_probes_need_no_key(client: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200


def test_without_configured_keys_every_request_is_401(services: Services) -> None:
    keyless = replace(services, settings=services.settings.model_copy(update={"api_keys": {}}))
    with TestClient(create_app(keyless)) as client:
        assert_problem(client.post("/v1/events", json=portfolio(), headers=PUB), 401)
        assert_problem(client.get("/v1/projects/P-1/history", headers=AUDIT), 401)
        assert client.get("/healthz").status_code == 200
