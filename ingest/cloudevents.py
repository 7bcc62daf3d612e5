"""CloudEvents 1.0 envelopes, in structured and binary content mode (HTTP and Kafka)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import unquote_to_bytes

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from domain.values import Envelope, utc

Attribute = Annotated[str, Field(min_length=1, max_length=2048)]


class CloudEvent(BaseModel):
    """One inbound CloudEvent; extension attributes (such as ``actor``) are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: Attribute
    source: Attribute
    type: Attribute
    subject: Attribute
    time: AwareDatetime
    # A JSON media type (application/json, application/cloudevents+json, ...), checked by
    # a pattern rather than a Python validator: this model is on every message's path.
    datacontenttype: Annotated[str, Field(pattern=r"(?i)^[^;]*json\s*(;.*)?$")] = (
        "application/json")
    data: dict[str, Any]
    actor: Annotated[str, Field(max_length=2048)] | None = None

    def envelope(self) -> Envelope:
        return Envelope(self.source, self.id, self.actor, utc(self.time))

    @property
    def recorded_time(self) -> datetime:
        return utc(self.time)


class MalformedEventError(ValueError):
    """The message is not a CloudEvent we can read (bad JSON, missing or invalid attributes)."""


def describe(error: ValidationError) -> str:
    """One line a publisher can act on: where and what, for each problem."""
    parts = []
    for e in error.errors(include_url=False)[:10]:
        where = ".".join(str(p) for p in e["loc"]) or "event"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


def parse_structured(value: bytes | str | Mapping[str, Any]) -> CloudEvent:
    try:
        if isinstance(value, Mapping):
            return CloudEvent.model_validate(value)
        return CloudEvent.model_validate(orjson.loads(value))
    except orjson.JSONDecodeError as e:
        raise MalformedEventError(f"not valid JSON: {e}") from None
    except ValidationError as e:
        raise MalformedEventError(describe(e)) from None


_BATCH = TypeAdapter(list[CloudEvent])


def parse_batch(items: list[Any]) -> list[CloudEvent] | None:
    """Every item of a structured batch, validated in one call; None if any is not valid
    (then ``parse_structured`` on each item says which and why, with the usual messages).

    One call for the batch spares a Python round trip per event, the larger part of
    validating a small envelope."""
    try:
        return _BATCH.validate_python(items)
    except ValidationError:
        return None


def parse_binary(attributes: Mapping[str, str], data: bytes) -> CloudEvent:
    """``attributes`` are the ``ce-*``/``ce_*`` headers without their prefix, plus content-type."""
    fields: dict[str, Any] = dict(attributes)
    content_type = fields.pop("content-type", None)
    if content_type is not None:
        fields["datacontenttype"] = content_type
    try:
        fields["data"] = orjson.loads(data) if data else None
    except orjson.JSONDecodeError as e:
        raise MalformedEventError(f"data is not valid JSON: {e}") from None
    try:
        return CloudEvent.model_validate(fields)
    except ValidationError as e:
        raise MalformedEventError(describe(e)) from None


def binary_attributes(headers: Iterable[tuple[str, str]], prefix: str, *,
                      percent_encoded: bool = False) -> dict[str, str] | None:
    """The CloudEvent attributes carried as headers, or None if the message is not binary mode.

    ``percent_encoded`` is the HTTP binding's rule (CloudEvents HTTP 3.1.3.2): a ``ce-*``
    value is UTF-8, percent-encoded by the sender (the official SDKs do), and HTTP headers
    arrive as latin-1 text. Kafka's binding has no such step: its ``ce_*`` values are UTF-8
    as they stand. A header given twice has no single value, so binary mode refuses it
    (``MalformedEventError``) rather than let the last one win silently.
    """
    attributes: dict[str, str] = {}
    repeated: list[str] = []
    content_type: str | None = None
    for name, value in headers:
        lowered = name.lower()
        if lowered.startswith(prefix):
            attribute = lowered[len(prefix):]
            if attribute in attributes:
                repeated.append(lowered)
            attributes[attribute] = value
        elif lowered == "content-type":
            if content_type is not None:
                repeated.append(lowered)
            content_type = value
    if content_type is not None and content_type.lower().startswith("application/cloudevents"):
        return None  # structured mode, even if ce headers are present (the spec's rule)
    if "specversion" not in attributes:
        return None
    if repeated:
        names = ", ".join(sorted(set(repeated)))
        raise MalformedEventError(f"header {names} is given more than once: each CloudEvent "
                                  "attribute takes exactly one value")
    if percent_encoded:
        attributes = {name: _percent_decoded(name, prefix, value)
                      for name, value in attributes.items()}
    if content_type is not None:
        attributes["content-type"] = content_type
    return attributes


def _percent_decoded(name: str, prefix: str, value: str) -> str:
    # Bytes back from latin-1 first: a sender that wrote raw UTF-8 (not the binding's
    # form, but common) still reads as it meant; "%" not followed by two hex digits
    # stays as it is (unquote's rule).
    try:
        return unquote_to_bytes(value.encode("latin-1")).decode("utf-8")
    except UnicodeError:
        raise MalformedEventError(f"header {prefix}{name}: not UTF-8 once percent-decoded "
                                  "(the CloudEvents HTTP binding)") from None
