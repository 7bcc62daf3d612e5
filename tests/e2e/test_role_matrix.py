"""The role matrix of CONTRACT section 4, generated: every operation of the app's OpenAPI
document x the four roles and no key (issue 9).

401 without a valid key, 403 with a key that lacks the role, otherwise neither 401 nor 403.
Each operation's rule comes from ``RULES`` below (what section 4 says, plus the routes the
later sections add); an operation no rule names fails the test, so a new route must be
given its roles here. ``?as_of=`` on a view asks for ``auditor`` on top of ``viewer``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.auth import IMPLIED
from pmo.settings import Settings
from tests.e2e.conftest import running_client

ROLES = ("publisher", "viewer", "auditor", "admin")
PUBLIC = frozenset({"*public*"})  # no key needed
ANY_KEY = frozenset({"*any-key*"})  # any valid key, whatever its roles

# (method, path pattern, roles any one of which lets the caller in)
RULES: list[tuple[str, str, frozenset[str]]] = [
    ("POST", r"/v1/events", frozenset({"publisher"})),
    ("GET", r"/v1/projects/\{[^}]+\}/history", frozenset({"auditor"})),
    ("GET", r"/v1/audit(/.*)?", frozenset({"auditor"})),
    ("GET", r"/v1/rejections", frozenset({"auditor"})),
    ("GET", r"/v1/quarantine", frozenset({"auditor"})),
    ("POST", r"/v1/quarantine/.*", frozenset({"admin"})),
    ("POST", r"/v1/projections/\{[^}]+\}/rebuild", frozenset({"admin"})),
    ("GET", r"/v1/portfolios/\{[^}]+\}/restatements", frozenset({"auditor"})),
    ("GET", r"/v1/(portfolios|projects|programs|managers)(/\{[^}]+\})?", frozenset({"viewer"})),
    ("GET", r"/v1/projections", frozenset({"viewer"})),
    ("GET", r"/v1/stream", frozenset({"viewer"})),
    ("GET", r"/v1/receipts", frozenset({"publisher", "auditor"})),
    ("GET", r"/v1/whoami", ANY_KEY),
    ("GET", r"/(healthz|readyz|metrics|asyncapi\.json)", PUBLIC),
    ("GET", r"/v1/schemas(/\{[^}]+\})?", PUBLIC),
]
KEYS = {f"{role}-key": [role] for role in ROLES}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", api_keys=KEYS, poll_interval_ms=5,
                        _env_file=None)  # type: ignore[call-arg]
    with running_client(settings) as client:
        yield client


def rule_of(method: str, path: str) -> frozenset[str]:
    for rule_method, pattern, roles in RULES:
        if rule_method == method and re.fullmatch(pattern, path):
            return roles
    raise AssertionError(f"{method} {path}: no rule of CONTRACT section 4 names it; add one")


def lets_in(allowed: frozenset[str], role: str | None) -> bool:
    if allowed is PUBLIC:
        return True
    if role is None:
        return False
    return allowed is ANY_KEY or bool(IMPLIED[role] & allowed)


def cells(client: TestClient) -> Iterator[tuple[str, str, dict[str, Any], frozenset[str]]]:
    """(method, concrete path, query, allowed roles) of every documented operation."""
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        for lower, operation in operations.items():
            method = lower.upper()
            allowed = rule_of(method, path)
            if any("text/event-stream" in (r.get("content") or {})
                   for r in operation.get("responses", {}).values()):
                continue  # endless: checked by its own tests
            concrete = re.sub(r"\{[^}]+\}", "no-such-id", path)
            query: dict[str, Any] = {p["name"]: "x" for p in operation.get("parameters", [])
                                     if p["in"] == "query" and p.get("required")}
            yield method, concrete, query, allowed
            if any(p["name"] == "as_of" for p in operation.get("parameters", [])):
                yield method, concrete, {**query, "as_of": "2026-01-01T00:00:00Z"}, (
                    frozenset({"auditor"}))


def test_every_operation_answers_each_role_as_section_4_says(client: TestClient) -> None:
    wrong = []
    checked = 0
    for method, path, query, allowed in cells(client):
        for role in (*ROLES, None):
            headers = {} if role is None else {"Authorization": f"Bearer {role}-key"}
            body = {"content": b"[]", "headers": {**headers,
                                                  "Content-Type": "application/json"}} if (
                method == "POST") else {"headers": headers}
            status = client.request(method, path, params=query, **body).status_code
            if lets_in(allowed, role):
                expected = "not 401/403"
                ok = status not in (401, 403)
            else:
                expected = "401" if role is None else "403"
                ok = status == int(expected)
            checked += 1
            if not ok:
                wrong.append(f"{method} {path} {query} as {role or 'no key'}: {status}, "
                             f"expected {expected}")
    assert wrong == []
    assert checked >= 18 * 5


def test_a_wrong_key_is_401_like_no_key(client: TestClient) -> None:
    answer = client.get("/v1/portfolios", headers={"Authorization": "Bearer not-a-key"})
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["www-authenticate"] == "Bearer"
