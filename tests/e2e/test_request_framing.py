"""How a request is framed, beside its content: the content coding of a body, and one
key per request (found by the black-box run of the hardening round)."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import PUB, assert_problem, auth, cloud_event, portfolio

CODINGS = st.one_of(
    st.sampled_from(["gzip", "deflate", "br", "zstd", "compress", "x-gzip", "GZIP", "*",
                     "identity, gzip", "gzip, identity", "aes128gcm", "identity;q=0"]),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e, exclude_characters=","),
            min_size=1, max_size=12).filter(lambda t: t.strip().lower() != "identity"))


def _manager(n: int) -> dict[str, Any]:
    return cloud_event("pmo.manager.registered", f"M-CE-{n}", {"name": "Mia", "capacity": 2},
                       id_=f"coding-{n}")


def _trail(client: TestClient) -> tuple[int, int]:
    """(events stored, inbound messages refused) as the API shows them."""
    audit = client.get("/v1/audit?limit=1000", headers=auth("all-key")).json()["items"]
    rejections = client.get("/v1/rejections?limit=1000", headers=auth("all-key")).json()["items"]
    return len(audit), len(rejections)


@settings(max_examples=25, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(coding=CODINGS, binary=st.booleans(), compressed=st.booleans())
def test_a_body_in_any_content_coding_but_identity_is_415_and_nothing_is_kept(
        client: TestClient, coding: str, binary: bool, compressed: bool) -> None:
    event = _manager(0)
    if binary:
        body = orjson.dumps(event["data"])
        headers = {"ce-specversion": "1.0", "ce-id": event["id"], "ce-source": event["source"],
                   "ce-type": event["type"], "ce-subject": event["subject"],
                   "ce-time": event["time"], "Content-Type": "application/json"}
    else:
        body, headers = orjson.dumps(event), {"Content-Type": "application/cloudevents+json"}
    before = _trail(client)
    response = client.post("/v1/events", content=gzip.compress(body) if compressed else body,
                           headers={**PUB, **headers, "Content-Encoding": coding})
    problem = assert_problem(response, 415)
    assert problem["type"].endswith("/unsupported-content-encoding")
    assert response.headers["accept-encoding"] == "identity"
    assert _trail(client) == before


@pytest.mark.parametrize("coding", ["identity", "IDENTITY", " identity ", ""])
def test_identity_is_the_body_as_it_is(client: TestClient, coding: str) -> None:
    response = client.post("/v1/events", content=orjson.dumps(_manager(1)),
                           headers={**PUB, "Content-Type": "application/json",
                                    "Content-Encoding": coding})
    assert response.status_code in (200, 201), response.text


ROUTES = ["/v1/portfolios", "/v1/projects", "/v1/managers", "/v1/audit", "/v1/rejections",
          "/v1/projections", "/v1/portfolios/PF-1", "/v1/whoami"]


@settings(max_examples=20, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES),
       keys=st.lists(st.sampled_from(["all-key", "view-key", "audit-key", "pub-key", "nope"]),
                     min_size=2, max_size=3))
def test_two_authorization_headers_are_401_whichever_keys(
        client: TestClient, route: str, keys: list[str]) -> None:
    # A warm cache first: the fast path of cached views must not take the first key either.
    client.post("/v1/events", json=portfolio(), headers=PUB)
    assert client.get(route, headers=auth("all-key")).status_code == 200
    response = client.get(route, headers=[("Authorization", f"Bearer {k}") for k in keys])
    assert "more than once" in assert_problem(response, 401)["detail"]


def test_two_authorization_headers_store_nothing(client: TestClient) -> None:
    before = _trail(client)
    response = client.post("/v1/events", content=orjson.dumps(_manager(2)),
                           headers=[("Authorization", "Bearer pub-key"),
                                    ("Authorization", "Bearer pub-key"),
                                    ("Content-Type", "application/json")])
    assert_problem(response, 401)
    assert _trail(client) == before


def test_the_cached_view_fast_path_does_not_take_the_first_of_two_keys(
        client: TestClient) -> None:
    client.post("/v1/events", json=portfolio(), headers=PUB)
    for _ in range(3):  # built, cached, then answered by the fast path
        assert client.get("/v1/portfolios/PF-1", headers=auth("view-key")).status_code == 200
    response = client.get("/v1/portfolios/PF-1", headers=[("Authorization", "Bearer view-key"),
                                                         ("Authorization", "Bearer nope")])
    assert_problem(response, 401)
