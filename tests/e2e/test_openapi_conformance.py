"""schemathesis against /openapi.json, in process, on the demo portfolio (real stores,
SQLite and PostgreSQL): every answer has a documented status, a documented content type
and fits its schema, none is a 5xx, and a schema-valid request is never refused as
malformed (400/422).

The last check is what ``positive_data_acceptance`` asks, without the allowance
``schemathesis.toml`` gives the CLI run (tests/e2e/test_schemathesis_cli.py, every check):
the parameters whose acceptance depends on the store's state or the clock are given a
value that holds whatever the state (``min_position``, ``as_of``, ``reported_at``) or
left out (an opaque cursor), so any other 400/422 to schema-valid data fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.openapi import POSITION_PAGED
from tests.conftest import drop_postgres_schema, fresh_postgres_schema
from tests.e2e.demo_app import ALL, demo_client

# Values that hold whatever the state: a position every store has, an instant now past.
STATE_DEPENDENT = {"min_position": 0, "as_of": "2026-01-01T00:00:00Z",
                   "reported_at": "2026-01-01T00:00:00Z"}


def schema_valid_is_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.status_code in (400, 422):
        raise AssertionError(f"schema-valid request refused: {response.status_code} "
                             f"{response.text[:500]}")
    return None


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance,
          schema_valid_is_accepted]


@pytest.fixture(scope="module", params=["sqlite", pytest.param(
    "postgres", marks=pytest.mark.postgres)])
def demo(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    url = fresh_postgres_schema() if request.param == "postgres" else None
    try:
        with demo_client(tmp_path_factory.mktemp("demo"), projects=8, store_url=url) as client:
            yield client
    finally:
        if url is not None:
            drop_postgres_schema(url)


def test_answers_conform_to_the_document(demo: TestClient) -> None:
    api = schemathesis.openapi.from_asgi("/openapi.json", demo.app)
    failures: dict[str, str] = {}
    # The live stream stays open up to 60 s a case: tests/e2e/test_dashboard_api.py covers it.
    operations = [op for op in (result.ok() for result in api.get_all_operations())
                  if "text/event-stream" not in str(op.definition.raw.get("responses", {}))]
    assert len(operations) >= 20
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=15, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def conforms(case: Any) -> None:
            query = case.query or {}
            for name, value in STATE_DEPENDENT.items():
                if name in query:
                    query[name] = value
            if case.path not in POSITION_PAGED:
                query.pop("cursor", None)
            case.call_and_validate(headers=ALL, checks=CHECKS)

        try:
            conforms()
        except Exception as e:  # every operation's finding, not just the first
            found = getattr(e, "exceptions", None) or [e]
            failures[operation.label] = "\n".join(str(f)[:1500] for f in found)
    assert failures == {}
