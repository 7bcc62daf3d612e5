"""The machine-readable contracts over HTTP (CONTRACT 12): schemas, AsyncAPI, OpenAPI, docs.

Each is served without a key; what they say is checked against the running app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from jsonschema import Draft7Validator, Draft202012Validator

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


ASYNCAPI_SCHEMA = Path(__file__).parents[1] / "data" / "asyncapi" / "asyncapi-3.0.0.schema.json"
REPO = Path(__file__).parents[2]


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def test_asyncapi_is_a_valid_3_0_document_whose_refs_resolve(client: TestClient) -> None:
    response = client.get("/asyncapi.json")
    assert response.status_code == 200
    document = response.json()
    spec = json.loads(ASYNCAPI_SCHEMA.read_text())
    errors = [f"{e.json_path}: {e.message[:200]}"
              for e in Draft7Validator(spec).iter_errors(document)]
    assert errors == []
    assert document["asyncapi"] == "3.0.0" and document["info"]["title"]
    addresses = {c["address"] for c in document["channels"].values()}
    assert addresses == {"pmo.inbound", "pmo.inbound.dlq", "pmo.inbound.rejected",
                         "pmo.events"}
    for channel in document["channels"].values():
        assert channel["messages"]
        for message in channel["messages"].values():
            resolved = resolve(document, message["$ref"])
            assert "payload" in resolved and "bindings" in resolved
    for operation in document["operations"].values():
        for message in operation["messages"]:
            assert resolve(document, message["$ref"])
    unresolved = [r for r in refs(document) if not _resolves(document, r)]
    assert unresolved == []
    # What a consumer of pmo.events needs: the key and the 'pmo' header's five fields.
    stored = document["components"]["messages"]["StoredEvent"]
    assert stored["headers"]["required"] == ["pmo"]
    assert stored["bindings"]["kafka"]["key"]["format"] == "uuid"
    # Binary mode's headers come from the envelope model: every required attribute.
    binary = document["components"]["messages"]["InboundBinary"]["headers"]
    assert set(binary["required"]) >= {"ce_id", "ce_source", "ce_type", "ce_subject",
                                       "ce_specversion", "ce_time"}
    # The copy in docs/ is the served document.
    assert json.loads((REPO / "docs" / "asyncapi.json").read_text()) == document


def _resolves(document: dict[str, Any], ref: str) -> bool:
    try:
        resolve(document, ref)
    except (KeyError, AssertionError):
        return False
    return True


def test_the_asyncapi_check_sees_a_broken_document(client: TestClient) -> None:
    document = client.get("/asyncapi.json").json()
    document["operations"]["relayEvents"]["action"] = "publish"  # an AsyncAPI 2 word
    spec = json.loads(ASYNCAPI_SCHEMA.read_text())
    assert list(Draft7Validator(spec).iter_errors(document))
    assert not _resolves(document, "#/components/messages/Nowhere")
