"""``/openapi.json`` that describes the API as it answers, and offline ``/docs`` and ``/redoc``.

FastAPI's own document misses what this API does outside its models: routes answer
ready JSON bytes (so no response schema), errors are RFC 9457 problem JSON (FastAPI
documents its 422 shape), the key is a bearer token checked by a dependency, and
``POST /v1/events`` reads its body raw. ``install`` replaces ``app.openapi`` with a
builder that starts from FastAPI's document and adds, per route:

- the answer's schema (``api.documents``), where the route gives none itself;
- a problem+json response for each status the route can answer: 401/403 where a
  key is needed, 422 where it takes parameters, 404 where it takes an id, the
  statuses its body raises with ``Problem(...)``, 413 for a body, 500 everywhere;
- the bearer scheme on routes that need a key (found from ``api.auth.ROLE_CHECKS``);
- for each query parameter a route reads as text, what it accepts (instants, cursors,
  ``min_position``, no NUL): schemathesis's positive and negative checks hold the
  document to it (tests/e2e/test_schemathesis_cli.py).

The docs pages load swagger-ui and redoc from ``/docs-assets/``, files shipped by the
``fastapi-offline`` package (MIT): nothing is fetched from the internet.
"""

from __future__ import annotations

import inspect
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.routing import BaseRoute, Mount

from api import documents as d
from api.auth import ROLE_CHECKS
from api.params import MAX_POSITION, POSITION_CURSOR
from api.problems import PROBLEM
from ingest.jsonschemas import ENVELOPE, components
from ingest.limits import INSTANT_PATTERN
from ingest.schemas import TYPES
from projections.lists import MAX_CURSOR, SORTS

REF = "#/components/schemas/"
ASSETS = "/docs-assets"
JSON = "application/json"

# (method, path template) -> {status: model}, for routes that write their own bytes.
RESPONSES: dict[tuple[str, str], dict[int, Any]] = {
    ("GET", "/v1/portfolios"): {200: d.PortfolioList},
    ("GET", "/v1/portfolios/{portfolio_id}"): {200: d.Portfolio},
    ("GET", "/v1/portfolios/{portfolio_id}/restatements"): {200: d.Restatements},
    ("GET", "/v1/projects"): {200: d.ProjectList},
    ("GET", "/v1/projects/{project_id}"): {200: d.Project},
    ("GET", "/v1/projects/{project_id}/history"): {200: d.History},
    ("GET", "/v1/programs/{program_id}"): {200: d.Program},
    ("GET", "/v1/managers"): {200: d.ManagerList},
    ("GET", "/v1/managers/{manager_id}"): {200: d.Manager},
    ("GET", "/v1/audit"): {200: d.AuditPage},
    ("GET", "/v1/audit/verify"): {200: d.AuditVerified},
    ("GET", "/v1/audit/anchor"): {200: d.AuditAnchor},
    ("GET", "/v1/rejections"): {200: d.RejectionPage},
    ("GET", "/v1/projections"): {200: d.ProjectionList},
    ("POST", "/v1/projections/{name}/rebuild"): {202: d.RebuildStarted},
    ("GET", "/healthz"): {200: d.Alive},
    ("GET", "/readyz"): {200: d.Ready},
    ("GET", "/v1/whoami"): {200: d.WhoAmI},
    ("GET", "/v1/receipts"): {200: d.ReceiptStatus},
    ("POST", "/v1/events"): {201: d.Stored, 202: d.Stored, 200: (d.Stored, d.BatchResults)},
}
# Answers that are not JSON: media type -> schema.
OTHER_CONTENT: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("GET", "/v1/audit/export"): {
        "text/csv": {"schema": {"type": "string"}},
        "application/x-ndjson": {"schema": {"type": "string", "description":
                                            "one audit entry (JSON) per line"}}},
    ("GET", "/v1/stream"): {"text/event-stream": {"schema": {
        "type": "object", "description": "one server-sent event: 'views' each time the views "
        "move, its data a JSON object {seq, store, positions}",
        "properties": {"event": {"type": "string"}, "data": {"type": "string"},
                       "id": {"type": "string"}, "retry": {"type": "integer"}}}}},
    ("GET", "/metrics"): {"text/plain": {"schema": {"type": "string", "description":
                                                    "Prometheus text exposition format"}}},
}
DESCRIPTIONS = {400: "malformed request", 401: "no valid API key (send "
                "'Authorization: Bearer <key>')", 403: "the key lacks the role",
                404: "unknown id", 409: "refused by the PMO's rules, or not possible now",
                413: "body over PMO_MAX_BODY_BYTES", 415: "unsupported media type",
                422: "invalid parameters or data", 500: "unexpected error (logged)",
                503: "a dependency does not answer"}
# Query parameters the routes read as text, to answer their own problems: what they accept.
INSTANTS = ("as_of", "valid_at", "reported_at", "since", "until")
INSTANT = {"type": "string", "format": "date-time", "pattern": INSTANT_PATTERN}
RANGE = (" An RFC 3339 instant with its UTC offset, between 1970-01-01T00:00:00Z and "
         "9999-12-30T00:00:00Z (the pattern states the years 1971 to 9998, which hold "
         "with any offset).")
# Lists paged by position: the cursor is a position, any one is a place to resume.
POSITION_PAGED = {"/v1/audit", "/v1/rejections", "/v1/projects/{project_id}/history"}
OPAQUE = {"type": "string", "pattern": "^[A-Za-z0-9_-]+={0,2}$", "maxLength": MAX_CURSOR,
          "description": "next_cursor of the previous page, passed back as it is. It is "
          "opaque: a value this service did not give out for this list (and sort) is "
          "refused with 422, however well formed."}
NO_NUL = "^[^\\x00]*$"
_RAISED = re.compile(r"Problem\(\s*(\d{3})")
BINARY_MODE = (
    "\n\n**Binary content mode** (the CloudEvents HTTP binding): send the `data` alone as "
    "the body with `Content-Type: application/json`, and every other attribute as a "
    "`ce-` header (`ce-specversion: 1.0`, `ce-id`, `ce-source`, `ce-type`, `ce-subject`, "
    "`ce-time`, `ce-actor`...). Header values are percent-encoded UTF-8 (the official "
    "SDKs do it: `ce-subject: PRJ%20%C3%A9` is the subject `PRJ é`). A `ce-` header "
    "given twice is refused (400). Each type's `data` schema is also served at "
    "`GET /v1/schemas/{type}`.")


def _models_schema(models: list[type[BaseModel]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=REF + "{model}", mode="serialization")
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def _schema_of(entry: Any) -> dict[str, Any]:
    if isinstance(entry, tuple):
        return {"oneOf": [{"$ref": REF + m.__name__} for m in entry]}
    return {"$ref": REF + entry.__name__}


def _role(route: APIRoute) -> str | None:
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        if dependency.call in ROLE_CHECKS:
            return ROLE_CHECKS[dependency.call]
        pending += dependency.dependencies
    return None


def _statuses(route: APIRoute, method: str, role: str | None) -> set[int]:
    statuses = {500}
    if role is not None:
        statuses |= {401, 403}
    params = route.dependant.query_params + route.dependant.path_params
    if params:
        statuses.add(422)
    if route.dependant.path_params:
        statuses.add(404)
    if method in ("POST", "PUT", "PATCH"):
        statuses.add(413)
    try:
        source = inspect.getsource(route.endpoint)
    except (OSError, TypeError):
        source = ""
    statuses |= {int(s) for s in _RAISED.findall(source)}
    return statuses


def _event_schemas() -> dict[str, Any]:
    """One schema per type: the envelope with its ``type`` fixed and its ``data``'s schema."""
    out = components(REF + "{model}")
    for type_ in TYPES:
        out[f"event.{type_}"] = {
            "title": f"A '{type_}' CloudEvent",
            "allOf": [{"$ref": REF + ENVELOPE}],
            "properties": {"type": {"const": type_}, "data": {"$ref": REF + type_}}}
    out["CloudEvent"] = {"oneOf": [{"$ref": f"{REF}event.{t}"} for t in TYPES],
                         "discriminator": {"propertyName": "type", "mapping": {
                             t: f"{REF}event.{t}" for t in TYPES}}}
    return out


def _events_body(operation: dict[str, Any]) -> None:
    one = {"$ref": REF + "CloudEvent"}
    # A batch answers 200 with one result per item (CONTRACT section 8): an item that is not
    # a CloudEvent is that item's 'invalid' result, not the batch's refusal. So any item is
    # accepted; the CloudEvent branch says what an item should be.
    item = {"anyOf": [one, {}], "description": "a CloudEvent; anything else is answered "
            "'invalid' in its own result, and the other items are decided as usual"}
    batch = {"type": "array", "items": item, "description": "a batch: each item stands "
             "alone (at most PMO_MAX_BATCH_EVENTS items, else 413)"}
    content = operation["requestBody"]["content"]
    content["application/cloudevents+json"]["schema"] = one
    content["application/cloudevents-batch+json"]["schema"] = batch
    content["application/json"]["schema"] = {"oneOf": [one, batch]}
    operation["description"] = (operation.get("description") or "") + BINARY_MODE


def build(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes, tags=app.openapi_tags)
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    models = [d.Problem, *(m for entries in RESPONSES.values() for entry in entries.values()
                           for m in (entry if isinstance(entry, tuple) else (entry,)))]
    schemas.update(_models_schema(models))
    schemas.update(_event_schemas())
    schema["components"]["securitySchemes"] = {"bearer": {
        "type": "http", "scheme": "bearer",
        "description": "an API key from PMO_API_KEYS; its roles decide what it may do"}}
    for route in _api_routes(app.routes):
        role = _role(route)
        for method in sorted(route.methods or ()):
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            _document(operation, method, route, role)
    return schema


def _api_routes(routes: list[BaseRoute]) -> list[APIRoute]:
    """Every documented route; FastAPI nests an included router's routes in one entry."""
    out: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            if route.include_in_schema:
                out.append(route)
            continue
        inner = getattr(getattr(route, "original_router", route), "routes", None)
        if isinstance(inner, list) and not isinstance(route, Mount):
            out += _api_routes(inner)
    return out


def _document(operation: dict[str, Any], method: str, route: APIRoute,
              role: str | None) -> None:
    key = (method, route.path_format)
    responses = operation["responses"]
    for status, entry in RESPONSES.get(key, {}).items():
        response = responses.setdefault(str(status), {"description": "success"})
        if str(status) != "200" and "200" in responses and 200 not in RESPONSES[key]:
            responses.pop("200")
        content = response.setdefault("content", {}).setdefault(JSON, {})
        content["schema"] = _schema_of(entry)
    for parameter in operation.get("parameters", ()):
        _parameter(parameter, route.path_format)
    if key in OTHER_CONTENT:
        responses["200"]["content"] = OTHER_CONTENT[key]
    if method == "HEAD":  # the GET's headers, no body
        for status, response in responses.items():
            if status.startswith("2"):
                response.pop("content", None)
    for status in _statuses(route, method, role):
        responses.setdefault(str(status), {"description": DESCRIPTIONS.get(status, "error")})
    for status, response in responses.items():
        if status.isdigit() and int(status) >= 400:
            content = response.setdefault("content", {})
            content.pop(JSON, None)  # FastAPI's 422 shape: never sent
            problem = content.setdefault(PROBLEM, {})
            problem["schema"] = {"$ref": REF + "Problem"}
    if role is not None:
        operation["security"] = [{"bearer": []}]
        needs = ("any valid key" if role == "any" else
                 f"a key with the `{role}` role".replace(" or ", "` or `"))
        operation["description"] = (f"Needs {needs}. "
                                    + operation.get("description", "")).strip()
    else:
        operation["security"] = []
    if key == ("POST", "/v1/events"):
        _events_body(operation)


def _parameter(parameter: dict[str, Any], path: str) -> None:
    """What the route accepts for a parameter it reads as text (FastAPI says any string)."""
    name, schema = parameter["name"], parameter["schema"]
    said = schema.get("description") or parameter.get("description") or ""
    if name in INSTANTS:
        text = said or "an instant"
        parameter["schema"] = {**INSTANT, "description": text.rstrip(".") + "." + RANGE}
    elif name == "cursor" and path in POSITION_PAGED:
        parameter["schema"] = {"type": "string", "pattern": POSITION_CURSOR, "description":
                               "next_cursor of the previous page (a position: 1 to 18 "
                               "digits)"}
    elif name == "cursor":
        parameter["schema"] = dict(OPAQUE)
    elif name == "min_position":
        parameter["schema"] = {"type": "integer", "minimum": 0, "maximum": MAX_POSITION,
                               "description": said}
    elif name == "sort" and path == "/v1/projects":
        # projections.lists reads any number of leading '-' as "descending".
        fields = "|".join(sorted(SORTS))
        parameter["schema"] = {**schema, "pattern": f"^-*(?:{fields})$"}
    if parameter["in"] == "query":
        _no_nul(parameter)


def _no_nul(parameter: dict[str, Any]) -> None:
    """A query string never holds NUL (api.edges answers 422): text without a pattern of
    its own says so. An optional parameter's ``null`` branch goes: a query string cannot
    send a JSON null, only leave the parameter out."""
    schema = parameter["schema"]
    branches = schema.get("anyOf")
    if branches is not None:
        kept = [b for b in branches if b.get("type") != "null"]
        if len(kept) == 1:
            rest = {k: v for k, v in schema.items() if k != "anyOf"}
            schema = parameter["schema"] = {**kept[0], **rest}
    if schema.get("type") == "string" and "pattern" not in schema and "enum" not in schema:
        schema["pattern"] = NO_NUL


def _assets() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def install(app: FastAPI) -> None:
    """The accurate ``/openapi.json``, and ``/docs`` and ``/redoc`` served offline.

    Create the app with ``docs_url=None, redoc_url=None`` (FastAPI's pages load
    their scripts from a CDN)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.mount(ASSETS, StaticFiles(directory=_assets()), name="docs-assets")
    url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=url, title=f"{app.title} - API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            # swagger-ui's default asks validator.swagger.io for a badge.
            swagger_ui_parameters={"validatorUrl": None})

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=url, title=f"{app.title} - API",
                              redoc_js_url=f"{ASSETS}/redoc.standalone.js",
                              redoc_favicon_url=f"{ASSETS}/favicon.png",
                              with_google_fonts=False)
