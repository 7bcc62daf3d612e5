"""``GET /v1/schemas`` and ``/v1/schemas/{type}``: the event contract, readable by a machine.

No key is needed (CONTRACT 12): a schema holds no data, and publishers read it before
they have a key. The documents are generated once from the validating models
(``ingest.jsonschemas``) and served as ready bytes.
"""

from __future__ import annotations

from functools import cache

import orjson
from fastapi import APIRouter, Response
from pydantic import BaseModel

from api.problems import Problem
from ingest.jsonschemas import ENVELOPE, MEDIA_TYPE, data_schemas, schema_of

router = APIRouter(tags=["schemas"])


class SchemaLink(BaseModel):
    type: str
    schema_url: str


class SchemaList(BaseModel):
    items: list[SchemaLink]
    envelope: str
    next_cursor: None = None


@router.get("/v1/schemas", summary="The event types, each with its data's JSON Schema")
def list_schemas() -> SchemaList:
    return SchemaList(items=[SchemaLink(type=t, schema_url=f"/v1/schemas/{t}")
                             for t in data_schemas()],
                      envelope=f"/v1/schemas/{ENVELOPE}")


@cache
def _bytes(name: str) -> bytes | None:
    schema = schema_of(name)
    return None if schema is None else orjson.dumps(schema)


@router.get("/v1/schemas/{type}", summary="JSON Schema 2020-12 of one type's data",
            description=f"`{ENVELOPE}` names the CloudEvent envelope's schema.",
            response_class=Response,
            responses={200: {"description": "a JSON Schema (2020-12)",
                             "content": {MEDIA_TYPE: {"schema": {"type": "object"}}}},
                       404: {"description": "no such event type"}})
def get_schema(type: str) -> Response:
    body = _bytes(type)
    if body is None:
        raise Problem(404, "Not found", f"unknown event type '{type}'", kind="not-found")
    return Response(body, media_type=MEDIA_TYPE)


@cache
def _asyncapi() -> bytes:
    from consumers.asyncapi import document  # noqa: PLC0415 (imports kafka: only when asked)

    return orjson.dumps(document())


@router.get("/asyncapi.json", summary="AsyncAPI 3.0 document of the Kafka topics",
            response_class=Response,
            responses={200: {"description": "an AsyncAPI 3.0.0 document",
                             "content": {"application/json": {"schema": {"type": "object"}}}}})
def asyncapi() -> Response:
    return Response(_asyncapi(), media_type="application/json")
