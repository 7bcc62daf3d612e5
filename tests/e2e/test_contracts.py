"""The machine-readable contracts over HTTP (CONTRACT 12): schemas, AsyncAPI, OpenAPI, docs.

Each is served without a key; what they say is checked against the running app."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft7Validator, Draft202012Validator, FormatChecker

from ingest.schemas import TYPES
from pmo.demo_data import generate
from tests.e2e.conftest import assert_problem
from tests.e2e.demo_app import ALL, demo_client


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


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with demo_client(tmp_path_factory.mktemp("demo")) as client:
        yield client


PUBLIC = {"/openapi.json", "/asyncapi.json", "/docs", "/redoc", "/v1/schemas", "/healthz",
          "/readyz", "/metrics"}


def test_contracts_and_docs_need_no_key(demo: TestClient) -> None:
    for path in PUBLIC:
        assert demo.get(path).status_code == 200, path
    assert demo.get("/v1/schemas/pmo.project.proposed").status_code == 200


def test_docs_pages_load_every_asset_from_this_server(demo: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = demo.get(page)
        assert html.status_code == 200 and "text/html" in html.headers["content-type"]
        assert not re.findall(r"https?://", html.text), f"{page} names an external URL"
        assets = re.findall(r"(?:src|href)=['\"]([^'\"]+)['\"]", html.text)
        assert any(a.endswith(".js") for a in assets), html.text
        for asset in assets:
            assert asset.startswith("/docs-assets/"), asset
            served = demo.get(asset)
            assert served.status_code == 200 and len(served.content) > 1000, asset


def test_openapi_documents_answers_errors_and_the_bearer_scheme(demo: TestClient) -> None:
    document = demo.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["bearer"] == {
        **document["components"]["securitySchemes"]["bearer"], "type": "http",
        "scheme": "bearer"}
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            where = f"{method.upper()} {path}"
            responses = operation["responses"]
            successes = {s: r for s, r in responses.items() if s.startswith("2")}
            assert successes, where
            for status, response in successes.items():
                if method == "head":
                    assert "content" not in response, where
                    continue
                for media, content in response["content"].items():
                    assert content.get("schema"), f"{where} {status} {media}: no schema"
            errors = {s: r for s, r in responses.items() if int(s) >= 400}
            assert "500" in errors, where
            for response in errors.values():
                assert list(response["content"]) == ["application/problem+json"], where
                assert response["content"]["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"}, where
            public = path in PUBLIC or path.startswith("/v1/schemas")
            assert operation["security"] == ([] if public else [{"bearer": []}]), where
            if not public:
                assert {"401", "403"} <= set(errors), where
            if "{" in path:
                assert "404" in errors, where
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status"}


def test_every_demo_event_fits_the_documented_request_body(demo: TestClient) -> None:
    document = demo.get("/openapi.json").json()
    body = document["paths"]["/v1/events"]["post"]["requestBody"]["content"]
    root = {"components": document["components"]}
    one = Draft202012Validator({**root, **body["application/cloudevents+json"]["schema"]},
                               format_checker=FormatChecker())
    batch = Draft202012Validator({**root, **body["application/cloudevents-batch+json"][
        "schema"]}, format_checker=FormatChecker())
    events = generate(projects=12)
    for event in events:
        assert not list(one.iter_errors(event)), event
    assert not list(batch.iter_errors(events[:50]))
    wrong = {**events[0], "data": {**events[0]["data"], "budget_envelope": 12.5}}
    assert list(one.iter_errors(wrong))  # a JSON number for money: refused by the schema


VIEWS = ["/v1/portfolios", "/v1/projects?limit=500", "/v1/managers",
         "/v1/audit?limit=1000", "/v1/audit/verify", "/v1/rejections", "/v1/projections",
         "/healthz", "/readyz", "/v1/schemas"]


def test_real_answers_fit_their_documented_schemas(demo: TestClient) -> None:
    document = demo.get("/openapi.json").json()
    root = {"components": document["components"]}

    def check(path: str, template: str) -> Any:
        response = demo.get(path, headers=ALL)
        assert response.status_code == 200, (path, response.text)
        schema = document["paths"][template]["get"]["responses"]["200"]["content"][
            "application/json"]["schema"]
        errors = [f"{e.json_path}: {e.message[:200]}" for e in Draft202012Validator(
            {**root, **schema}, format_checker=FormatChecker()).iter_errors(response.json())]
        assert errors == [], path
        return response.json()

    for path in VIEWS:
        check(path, path.split("?")[0])
    for item in check("/v1/portfolios", "/v1/portfolios")["items"]:
        check(f"/v1/portfolios/{item['portfolio_id']}", "/v1/portfolios/{portfolio_id}")
    for item in check("/v1/projects?limit=500", "/v1/projects")["items"]:
        check(f"/v1/projects/{item['project_id']}", "/v1/projects/{project_id}")
        check(f"/v1/projects/{item['project_id']}/history",
              "/v1/projects/{project_id}/history")
        if item["program_id"]:
            check(f"/v1/programs/{item['program_id']}", "/v1/programs/{program_id}")
    for item in check("/v1/managers", "/v1/managers")["items"]:
        check(f"/v1/managers/{item['manager_id']}", "/v1/managers/{manager_id}")
