"""The AsyncAPI 3.0 document of the Kafka topics (CONTRACT 12): ``pmo.inbound``, its two
dead-letter topics and ``pmo.events``, with their keys, headers and payloads.

Payload schemas come from the validating models (``ingest.jsonschemas.components``);
the header names from the modules that write them (``consumers.deadletters``,
``consumers.codec``). ``python -m consumers.asyncapi > docs/asyncapi.json`` writes the
copy kept in the repository (a test checks it is current).
"""

from __future__ import annotations

import sys
from functools import cache
from typing import Any

import orjson

from consumers.codec import HEADER
from consumers.deadletters import REASON_MAX_BYTES
from consumers.inbound import PREFIX
from consumers.topics import DLQ, EVENTS, INBOUND, REJECTED
from ingest.jsonschemas import ENVELOPE, components
from ingest.schemas import TYPES

VERSION = "3.0.0"
SCHEMAS = "#/components/schemas/"
KAFKA_BINDING = "0.5.0"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": SCHEMAS + name}


def _key(description: str, **schema: Any) -> dict[str, Any]:
    return {"kafka": {"key": {"type": "string", "description": description, **schema},
                      "bindingVersion": KAFKA_BINDING}}


def _binary_headers(envelope: dict[str, Any]) -> dict[str, Any]:
    """The ``ce_*`` headers of binary mode: the envelope's attributes, one header each."""
    properties = {f"{PREFIX}{name}": schema for name, schema in envelope["properties"].items()
                  if name not in ("data", "datacontenttype")}
    properties["content-type"] = {**envelope["properties"]["datacontenttype"],
                                  "description": "the data's media type (datacontenttype)"}
    required = [f"{PREFIX}{name}" for name in envelope["required"] if name != "data"]
    return {"type": "object", "properties": properties, "required": required,
            "description": "UTF-8 values as they stand (the Kafka binding has no "
                           "percent-encoding); a header given twice sends the message "
                           "to the DLQ. Other ce_* headers are extension attributes."}


_DEAD_LETTER_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "The original message's headers, unchanged, followed by these (see "
                   "pmo_headers_dropped for a message whose headers alone near 1 MB).",
    "properties": {
        "pmo_reason": {"type": "string", "maxLength": REASON_MAX_BYTES,
                       "description": "why the message was refused, as the API would say it"},
        "pmo_kind": {"type": "string", "enum": ["dlq", "rejected"]},
        "pmo_received_at": {"type": "string", "format": "date-time",
                            "description": "when pmo ingest handled it"},
        "pmo_source_topic": {"type": "string", "description": "where it was read"},
        "pmo_source_partition": {"type": "string", "pattern": "^[0-9]+$"},
        "pmo_source_offset": {"type": "string", "pattern": "^[0-9]+$"},
        "pmo_source": {"type": "string", "description": "instead of the three above, for "
                       "an event posted to the API in Kafka mode ('http')"},
        "pmo_truncated_from": {"type": "string", "pattern": "^[0-9]+$", "description":
                               "the original value's size, when only its head is kept (a "
                               "dead letter stays under 1,000,000 bytes)"},
        "pmo_sha256": {"type": "string", "description": "the whole original value's SHA-256 "
                       "(hex), with pmo_truncated_from"},
        "pmo_headers_dropped": {"type": "string", "pattern": "^[0-9]+$", "description":
                                "how many original headers were left out (they did not fit; "
                                "ce_* and content-type stay when under 64 KiB)"},
        "pmo_headers_sha256": {"type": "string", "description": "SHA-256 (hex) of the left-out "
                               "headers, each as <name length>:<name><value length>:<value>"},
        "pmo_key_sha256": {"type": "string", "description": "the original key's SHA-256 (hex), "
                           "when the key kept is its first 500,000 bytes"},
    },
    "required": ["pmo_reason", "pmo_kind", "pmo_received_at"],
}

_TYPED = {
    "type": "object",
    "description": "A value the store keeps typed (eventsourcing's JSON transcoding): "
                   "_type_ names it (decimal_str, date_iso, datetime_iso, an enum's name...), "
                   "_data_ is its text.",
    "properties": {"_type_": {"type": "string"}, "_data_": {}},
    "required": ["_type_", "_data_"],
}

_STORED_EVENT = {
    "type": "object",
    "description": "One stored domain event, the store's bytes unchanged (the audit hash "
                   "covers them): the envelope kept from the CloudEvent, then the event's "
                   "fields, Decimals, dates and times as typed values.",
    "properties": {
        "timestamp": {**_ref("TypedValue"), "description": "recording time (datetime_iso)"},
        "source": {"type": "string", "description": "the CloudEvent's source"},
        "event_id": {"type": "string", "description": "the CloudEvent's id"},
        "actor": {"type": ["string", "null"], "description": "the CloudEvent's actor"},
        "time": {**_ref("TypedValue"), "description": "the CloudEvent's time (valid time)"},
        "originator_topic": {"type": "string",
                             "description": "on an aggregate's first event: its class"},
        "key": {"type": "string", "description": "on an aggregate's first event: the "
                "publisher's id for it (the CloudEvent subject)"},
    },
    "required": ["timestamp", "source", "event_id", "time"],
    "additionalProperties": True,
}

_PMO_HEADER = {
    "type": "object",
    "properties": {HEADER: {
        "type": "string", "pattern": r"^[0-9]+ [0-9]+ [0-9]+ [^ ]+ [^ ]+$",
        "description": "five ASCII fields separated by single spaces: <position> "
                       "<prev_position> <version> <recorded_at> <type>: the global "
                       "position, the position of the event before it in the store (0 for "
                       "the first), the aggregate's version, the recording time (ISO 8601 "
                       "UTC) and the event type (e.g. pmo.project.approved; besides the "
                       "inbound types, the store's own such as pmo.portfolio.budget_committed)",
        "examples": ["1042 1041 3 2026-03-02T09:30:00.123456+00:00 pmo.project.approved"]}},
    "required": [HEADER],
}


@cache
def document() -> dict[str, Any]:
    schemas: dict[str, Any] = components(SCHEMAS + "{model}")
    envelope = schemas[ENVELOPE]
    schemas.update({"TypedValue": _TYPED, "StoredEvent": _STORED_EVENT})
    data = {"anyOf": [_ref(t) for t in TYPES],
            "description": "the data of the type named by ce_type (its schema is "
                           "components.schemas.<type>)"}
    subject_key = _key("the CloudEvent subject (so one aggregate's events keep their order)")
    messages = {
        "InboundStructured": {
            "name": "structured", "title": "A CloudEvent in structured content mode",
            "contentType": "application/cloudevents+json",
            "headers": {"type": "object", "properties": {"content-type": {
                "type": "string", "const": "application/cloudevents+json"}},
                "description": "content-type may be absent when no ce_ header is there"},
            "payload": _ref(ENVELOPE), "bindings": subject_key},
        "InboundBinary": {
            "name": "binary", "title": "A CloudEvent in binary content mode",
            "contentType": "application/json", "headers": _binary_headers(envelope),
            "payload": data, "bindings": subject_key},
        "DeadLetter": {
            "name": "deadLetter", "title": "A refused inbound message, kept whole",
            "summary": "dlq: malformed or schema-invalid; rejected: refused by the rules",
            "headers": _DEAD_LETTER_HEADERS,
            "payload": {"description": "the original message's value, byte for byte"},
            "bindings": _key("the original message's key")},
        "StoredEvent": {
            "name": "storedEvent", "title": "An accepted event, as stored, in store order",
            "contentType": "application/json", "headers": _PMO_HEADER,
            "payload": _ref("StoredEvent"),
            "bindings": _key("the aggregate's store id (a UUID); one aggregate's events "
                             "stay in one partition, in version order", format="uuid")},
    }
    channels = {
        "inbound": {"address": INBOUND, "title": "Inbound CloudEvents",
                    "description": "What publishers send; pmo ingest stores each event, or "
                                   "sends it to one of the two dead-letter topics.",
                    "messages": {"structured": {"$ref": "#/components/messages/InboundStructured"},
                                 "binary": {"$ref": "#/components/messages/InboundBinary"}}},
        "dlq": {"address": DLQ, "title": "Unreadable or schema-invalid inbound messages",
                "messages": {"deadLetter": {"$ref": "#/components/messages/DeadLetter"}}},
        "rejected": {"address": REJECTED,
                     "title": "Well-formed inbound events the PMO's rules refused",
                     "messages": {"deadLetter": {"$ref": "#/components/messages/DeadLetter"}}},
        "events": {"address": EVENTS, "title": "Accepted domain events, in store order",
                   "messages": {"storedEvent": {"$ref": "#/components/messages/StoredEvent"}}},
    }

    def operation(action: str, channel: str, summary: str) -> dict[str, Any]:
        return {"action": action, "channel": {"$ref": f"#/channels/{channel}"},
                "summary": summary,
                "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"}
                             for name in channels[channel]["messages"]]}

    return {
        "asyncapi": VERSION,
        "info": {"title": "pmo-ledger Kafka topics", "version": "0.1.0",
                 "description": "Topic names take the prefix PMO_TOPIC_PREFIX. JSON Schemas "
                                "of each type's data are also served at /v1/schemas."},
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": {
            "publishInbound": operation("receive", "inbound",
                                        "pmo ingest reads what publishers send"),
            "sendDeadLetters": operation("send", "dlq", "pmo ingest dead-letters what it "
                                         "cannot read"),
            "sendRejections": operation("send", "rejected", "pmo ingest dead-letters what "
                                        "the rules refuse"),
            "relayEvents": operation("send", "events", "pmo relay publishes every stored "
                                     "event"),
        },
        "components": {"schemas": schemas, "messages": messages},
    }


def main() -> None:
    sys.stdout.buffer.write(orjson.dumps(document(), option=orjson.OPT_INDENT_2) + b"\n")


if __name__ == "__main__":
    main()
