"""The machine-readable contracts over HTTP (CONTRACT 12): schemas, AsyncAPI, OpenAPI, docs.

Each is served without a key; what they say is checked against the running app."""

from __future__ import annotations

from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator

from ingest.schemas import TYPES
from tests.e2e.conftest import assert_problem


def test_schemas_are_listed_and_served_without_a_key(client: TestClient) -> None:
    listing = client.get("/v1/schemas")
    assert listing.status_code == 200, listing.text
    body = listing.json()
    assert [i["type"] for i in body["items"]] == list(TYPES)
    for item in [*body["items"], {"schema_url": body["envelope"]}]:
        response = client.get(item["schema_url"])
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/schema+json"
        Draft202012Validator.check_schema(response.json())
    assert_problem(client.get("/v1/schemas/pmo.project.teleported"), 404)
