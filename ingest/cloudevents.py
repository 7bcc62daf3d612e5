"""CloudEvents 1.0 envelopes, in structured and binary content mode (HTTP and Kafka)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import unquote_to_bytes

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from domain.values import Envelope, utc
from ingest.limits import (
    EXPLAINED,
    LONG_TEXT_MAX,
    LONG_TEXT_PATTERN,
    Id,
    Instant,
    Text,
)

# CloudEvents extension attributes are scalars (string, integer, boolean; URIs and
# timestamps as strings): a nested or oversize value is refused, never kept. An integer
# is a JSON number without a fraction, written 7 or 7.0 (JSON Schema's "integer", as
# /v1/schemas says); it is kept as 7. A string stays a string (the union tries exact
# types first).
Extension = (Annotated[str, StringConstraints(max_length=LONG_TEXT_MAX,
                                              pattern=LONG_TEXT_PATTERN)]
             | Annotated[int, Field(ge=-(2**63), lt=2**63)] | bool | None)


class CloudEvent(BaseModel):
    """One inbound CloudEvent; extension attributes (such as ``actor``) are kept.

    Every attribute's limits are CONTRACT section 10 (``ingest.limits``)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, Extension] = Field(init=False)

    specversion: Literal["1.0"]
    id: Id
    source: Id
    type: Id
    subject: Id
    time: Instant
    # A JSON media type (application/json, application/cloudevents+json, ...), checked by
    # a pattern rather than a Python validator: this model is on every message's path.
    datacontenttype: Annotated[str, Field(max_length=200,
                                          pattern=r"(?i)^[^;]*json\s*(;.*)?$")] = "application/json"
    data: dict[str, Any]
    actor: Text | None = None

    def envelope(self) -> Envelope:
        return Envelope(self.source, self.id, self.actor, utc(self.time))

    @property
    def recorded_time(self) -> datetime:
        return utc(self.time)


class MalformedEventError(ValueError):
    """The message is not a CloudEvent we can read (bad JSON, missing or invalid attributes)."""


REASON_MAX = 2000  # characters of a reason: it is echoed, logged and sent as a header
# Characters a reason shows escaped: it quotes a publisher's field names and ids, and
# must stay one printable line (a PostgreSQL text column cannot even hold NUL).
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7f, 0xa0))}
_ESCAPES.update({c: f"\\u{c:04x}" for c in (*range(0x202a, 0x202f), *range(0x2066, 0x206a))})


def printable(text: str, limit: int = REASON_MAX) -> str:
    """``text`` as one printable line of at most ``limit`` characters."""
    shown = text[:limit].translate(_ESCAPES)
    return shown if len(text) <= limit and len(shown) <= limit else shown[:limit - 3] + "..."


def describe(error: ValidationError) -> str:
    """One line a publisher can act on: where and what, for each problem."""
    parts = []
    for e in error.errors(include_url=False, include_input=False)[:10]:
        where = ".".join(printable(str(p), 100) for p in e["loc"]) or "event"
        message = e["msg"]
        if e["type"] == "string_pattern_mismatch":
            message = EXPLAINED.get(str(e.get("ctx", {}).get("pattern")), message)
        parts.append(f"{where}: {message}")
    return printable("; ".join(parts))


def parse_structured(value: bytes | str | Mapping[str, Any]) -> CloudEvent:
    try:
        if isinstance(value, Mapping):
            return CloudEvent.model_validate(value)
        return CloudEvent.model_validate(orjson.loads(value))
    except orjson.JSONDecodeError as e:
        raise MalformedEventError(f"not valid JSON: {e}") from None
    except ValidationError as e:
        raise MalformedEventError(describe(e)) from None
    except (RecursionError, TypeError, ValueError) as e:  # never a 500 for a message
        raise MalformedEventError(printable(f"unreadable event: {e}")) from None


_BATCH = TypeAdapter(list[CloudEvent])


def parse_batch(items: list[Any]) -> list[CloudEvent] | None:
    """Every item of a structured batch, validated in one call; None if any is not valid
    (then ``parse_structured`` on each item says which and why, with the usual messages).

    One call for the batch spares a Python round trip per event, the larger part of
    validating a small envelope."""
    try:
        return _BATCH.validate_python(items)
    except (ValidationError, RecursionError):
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
