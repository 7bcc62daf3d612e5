"""schemathesis against /openapi.json, in process, on the demo portfolio (real SQLite stores):
every answer has a documented status, a documented content type and fits its schema.

The conformance checks of the document this module owns. Two checks of ``--checks all``
are about inputs (whether the server accepts every request the schema allows, and
refuses every other) and a third about undeclared methods; they are run by the CLI
(see docs/integration.md) and are not asserted here.
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

from tests.e2e.demo_app import ALL, demo_client

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with demo_client(tmp_path_factory.mktemp("demo"), projects=8) as client:
        yield client


def test_answers_conform_to_the_document(demo: TestClient) -> None:
    api = schemathesis.openapi.from_asgi("/openapi.json", demo.app)
    failures: dict[str, str] = {}
    operations = [result.ok() for result in api.get_all_operations()]
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
            failures[operation.label] = str(e)[:1500]
    assert failures == {}
