"""schemathesis against /openapi.json, in process, on the demo portfolio (real stores,
SQLite and PostgreSQL): every answer has a documented status, a documented content type
and fits its schema, and none is a 5xx.

These are the checks of what the document says about answers. Two checks of
``--checks all`` are about inputs (whether the server accepts every request the schema
allows, and refuses every other) and a third about undeclared methods; the CLI runs
them (see docs/integration.md), they are not asserted here.
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

from tests.conftest import drop_postgres_schema, fresh_postgres_schema
from tests.e2e.demo_app import ALL, demo_client

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]


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
            case.call_and_validate(headers=ALL, checks=CHECKS)

        try:
            conforms()
        except Exception as e:  # every operation's finding, not just the first
            found = getattr(e, "exceptions", None) or [e]
            failures[operation.label] = "\n".join(str(f)[:1500] for f in found)
    assert failures == {}
