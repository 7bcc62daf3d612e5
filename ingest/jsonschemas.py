"""JSON Schema (2020-12) of each event type's ``data`` and of the envelope (CONTRACT 12).

Generated from the very models that validate inbound events (``ingest.schemas`` and
``ingest.cloudevents``), never written by hand, so a tightened limit shows up here
by itself. Two choices where pydantic's default says less than the model checks:

- a Decimal taken as a string is described with its pattern (pydantic leaves the
  string branch open);
- money is a string only: a JSON number is refused by the model (floats lose cents),
  so its schema is the string form alone.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from ingest.cloudevents import CloudEvent
from ingest.limits import DATE_PATTERN, INSTANT_PATTERN
from ingest.schemas import TYPES

DIALECT = "https://json-schema.org/draft/2020-12/schema"
ENVELOPE = "cloudevent"  # the name under /v1/schemas/ of the envelope's schema (no type has it)
MEDIA_TYPE = "application/schema+json"


class _Generator(GenerateJsonSchema):
    def get_decimal_pattern(self, schema: core_schema.DecimalSchema) -> str | None:
        return self.build_decimal_pattern(schema)

    def function_before_schema(self, schema: core_schema.BeforeValidatorFunctionSchema,
                               ) -> JsonSchemaValue:
        inner = schema["schema"]
        if self.mode == "validation" and inner["type"] == "decimal":
            # A Decimal behind a validator of its own is money: the validator refuses a
            # JSON number, so only the string branch (with its pattern) is the truth.
            described = self.generate_inner(inner)
            strings = [s for s in described.get("anyOf", ()) if s.get("type") == "string"]
            if strings:
                string: JsonSchemaValue = strings[0]
                return string
        return super().function_before_schema(schema)

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        described = super().decimal_schema(schema)
        bound = _plain_decimal_pattern(schema)
        if self.mode == "validation" and bound is not None:
            # A ratio or percentage given as a string: pydantic's pattern says "a decimal"
            # (5000 fits it); the string must be in range as the number is.
            for branch in described.get("anyOf", ()):
                if branch.get("type") == "string":
                    branch["pattern"] = bound
                    if schema.get("gt") == 0:
                        branch["not"] = {"pattern": "^0*\\.?0*$"}
        return described

    # pydantic says only ``format``: 0001-01-01 and a leap second fit it, the models refuse
    # them. The pattern states the range the models read (ingest.limits).
    def datetime_schema(self, schema: core_schema.DatetimeSchema) -> JsonSchemaValue:
        return {**super().datetime_schema(schema), "pattern": INSTANT_PATTERN}

    def date_schema(self, schema: core_schema.DateSchema) -> JsonSchemaValue:
        return {**super().date_schema(schema), "pattern": DATE_PATTERN}

    def chain_schema(self, schema: core_schema.ChainSchema) -> JsonSchemaValue:
        described = self._chain_schema(schema)
        # Positive money is a pattern-checked string, then a Decimal above 0: the pattern
        # lets "0.00" through, the schema must not.
        if self.mode == "validation" and any(
                step["type"] == "decimal" and step.get("gt") == 0 for step in schema["steps"]):
            described = {**described, "not": {"pattern": "^0+(\\.0+)?$"}}
        return described

    def _chain_schema(self, schema: core_schema.ChainSchema) -> JsonSchemaValue:
        # pydantic describes a chain's input by its first step alone: a date read as
        # "a string of at most 64 characters, then a date" would lose its format. When
        # every step reads the same JSON type, the input must satisfy them all.
        if self.mode == "validation":
            parts = [self.generate_inner(step) for step in schema["steps"]]
            if len({part.get("type") for part in parts} - {None}) == 1 and all(
                    "type" in part for part in parts):
                merged: JsonSchemaValue = {}
                for part in parts:
                    clashes = {k for k, v in part.items() if k in merged and merged[k] != v}
                    if clashes - {"title"}:
                        return {"allOf": parts}
                    merged.update(part)
                return merged
        return super().chain_schema(schema)


def _plain_decimal_pattern(schema: core_schema.DecimalSchema) -> str | None:
    """Plain decimals in [0, le] when ``le`` is a power of ten (ratios, percentages)."""
    low, high = schema.get("ge", schema.get("gt")), schema.get("le")
    places = schema.get("decimal_places")
    if low != 0 or high is None or places is None:
        return None
    digits = len(str(int(high))) - 1  # below 10^m: at most m integer digits
    if high != 10 ** digits:
        return None
    below = f"[0-9]{{1,{digits}}}" if digits else "0"
    fraction = f"\\.[0-9]{{1,{places}}}"
    return f"^0*(?:{int(high)}(?:\\.0{{1,{places}}})?|{below}(?:{fraction})?|{fraction})$"


def _document(model: type[BaseModel], title: str, description: str) -> dict[str, Any]:
    schema = model.model_json_schema(mode="validation", schema_generator=_Generator)
    return {"$schema": DIALECT, "$id": f"urn:pmo-ledger:schema:{title}", **schema,
            "title": title, "description": description}


@cache
def data_schemas() -> dict[str, dict[str, Any]]:
    """Event type -> the JSON Schema of its ``data``, in the contract's order."""
    return {type_: _document(model, type_, f"The data of a '{type_}' CloudEvent.")
            for type_, (model, _) in TYPES.items()}


@cache
def envelope_schema() -> dict[str, Any]:
    """The CloudEvent envelope; ``data`` is then checked by its type's schema."""
    schema = _document(CloudEvent, ENVELOPE,
                       "A CloudEvents 1.0 envelope as pmo-ledger reads it (structured "
                       "mode; in binary mode the same attributes are ce-* headers). "
                       "'data' follows the schema of its 'type'.")
    schema["properties"]["type"] = {**schema["properties"]["type"], "enum": list(TYPES)}
    return schema


def components(ref_template: str) -> dict[str, dict[str, Any]]:
    """Every data schema and the envelope's, by name, for embedding in a larger document
    (AsyncAPI's ``components.schemas``): nested models hoisted beside them, their
    references made with ``ref_template`` (e.g. ``#/components/schemas/{model}``)."""
    out: dict[str, dict[str, Any]] = {}
    models: list[tuple[str, type[BaseModel]]] = [(ENVELOPE, CloudEvent)]
    models += [(type_, model) for type_, (model, _) in TYPES.items()]
    for name, model in models:
        schema = model.model_json_schema(mode="validation", schema_generator=_Generator,
                                         ref_template=ref_template)
        out.update(schema.pop("$defs", {}))
        out[name] = {**schema, "title": name}
    out[ENVELOPE]["properties"]["type"] = envelope_schema()["properties"]["type"]
    return out


def schema_of(name: str) -> dict[str, Any] | None:
    if name == ENVELOPE:
        return envelope_schema()
    return data_schemas().get(name)
