"""Reading ``pmo.inbound`` messages as CloudEvents, in both Kafka content modes.

A message with a ``content-type`` starting ``application/cloudevents``, or with no
``ce_`` attributes at all, is structured mode (the whole event as the JSON value);
otherwise the ``ce_*`` headers carry the attributes and the value is ``data``
(binary mode). A message that cannot be read becomes an ``Inbound`` with an
error, so it takes the same route to the DLQ as a schema-invalid one.
"""

from __future__ import annotations

from collections.abc import Sequence

from ingest.cloudevents import (
    MalformedEventError,
    binary_attributes,
    parse_binary,
    parse_structured,
    printable,
)
from ingest.service import Inbound

PREFIX = "ce_"


def origin(topic: str, partition: int, offset: int) -> str:
    return f"kafka:{topic}:{partition}:{offset}"


def read(value: bytes | None, headers: Sequence[tuple[str, bytes | None]], *,
         where: str, max_bytes: int) -> Inbound:
    raw = value or b""
    kept = tuple((name, v or b"") for name, v in headers)
    if len(raw) > max_bytes:
        return Inbound(raw, error=f"message of {len(raw)} bytes is over the limit of "
                       f"{max_bytes} bytes", headers=kept, origin=where)
    try:
        text = [(name, v.decode()) for name, v in kept]
    except UnicodeDecodeError:
        return Inbound(raw, error="a header is not UTF-8 text", headers=kept, origin=where)
    try:
        attributes = binary_attributes(text, PREFIX)
        event = parse_structured(raw) if attributes is None else parse_binary(attributes, raw)
    except MalformedEventError as e:
        return Inbound(raw, error=str(e), headers=kept, origin=where)
    except Exception as e:  # any message it cannot read is a dead letter
        # Never a crash: a message that failed every re-read would stall its partition.
        return Inbound(raw, error=printable(f"unreadable message: {type(e).__name__}: {e}"),
                       headers=kept, origin=where)
    return Inbound(raw, event, headers=kept, origin=where)
