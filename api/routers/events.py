"""``POST /v1/events``: one CloudEvent or a batch, structured or binary content mode.

Every message takes the ingest path (``services.ingest``), so refused ones reach
the rejections log exactly as from Kafka. A single event answers with the HTTP
status of its outcome (CONTRACT section 8); a batch answers 200 with one result
per event, in order. After storing, the embedded runner is woken and awaited for
up to 100 ms, so a read right after the answer sees the write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response

from api.auth import Publisher
from api.deps import Services, ServicesDep
from api.metrics import Metrics
from api.problems import Problem
from api.routers.event_docs import OPENAPI
from ingest.batches import BatchBody, split_array
from ingest.cloudevents import (
    MalformedEventError,
    binary_attributes,
    parse_batch,
    parse_binary,
    parse_structured,
)
from ingest.service import Inbound, Result

router = APIRouter(tags=["events"])

READ_YOUR_WRITES_SECONDS = 0.1
STRUCTURED = {"application/json", "application/cloudevents+json",
              "application/cloudevents-batch+json"}
SINGLE_STATUS = {"accepted": 201, "duplicate": 200, "queued": 202}


async def raw_body(request: Request) -> bytes:
    """The body as bytes: kept whole for the rejections log (a plain ``def`` cannot await)."""
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]


@router.post("/v1/events", summary="Publish one CloudEvent or a batch", status_code=201,
             openapi_extra=OPENAPI["request"], responses=OPENAPI["responses"])
def post_events(_: Publisher, services: ServicesDep, request: Request, body: RawBody) -> Response:
    metrics: Metrics = request.app.state.metrics
    _check_identity_coding(request)
    binary = _binary(body, request)
    if binary is not None:
        return _single(services, metrics, binary)
    media_type = request.headers.get("content-type", "application/json")
    media_type = media_type.split(";", 1)[0].strip().lower()
    if media_type not in STRUCTURED:
        raise Problem(415, "Unsupported media type",
                      f"'{media_type}' is not a CloudEvents content type: send "
                      "application/cloudevents+json, application/cloudevents-batch+json, "
                      "application/json, or binary mode with ce-* headers",
                      kind="unsupported-media-type")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        # One unreadable item (a NUL byte, 2,000 levels deep) must not sink its batch.
        limit = services.settings.max_batch_events
        items = split_array(body, max_items=limit)
        if items is None:
            return _single(services, metrics, Inbound(body, error=f"not valid JSON: {e}"))
        _check_batch_size(len(items), limit, exact=len(items) <= limit)
        return _batch(services, metrics, [_item(raw) for raw in items])
    if isinstance(document, list):
        _check_batch_size(len(document), services.settings.max_batch_events)
        batch = BatchBody(body)
        events = parse_batch(document)
        if events is None:  # some item is not valid: each gets its own outcome
            return _batch(services, metrics, [_structured(item, batch.writer(item, i))
                                              for i, item in enumerate(document)])
        return _batch(services, metrics, [Inbound(batch.writer(item, i), event)
                                          for i, (item, event)
                                          in enumerate(zip(document, events, strict=True))])
    if media_type == "application/cloudevents-batch+json":
        return _single(services, metrics, Inbound(body, error="a batch must be a JSON array"))
    return _single(services, metrics, _structured(document, body))


def _check_identity_coding(request: Request) -> None:
    """The body is read as it came: a ``Content-Encoding`` other than identity is 415 with
    ``Accept-Encoding: identity`` (RFC 9110, 15.5.16). Ignored, a gzip body was answered
    as "not valid JSON" (400) and logged as a malformed event, and a body labelled ``br``
    but sent plain was stored."""
    codings = [c.strip().lower() for name, value in request.scope["headers"]
               if name == b"content-encoding" for c in value.decode("latin-1").split(",")]
    refused = [c for c in codings if c not in ("", "identity")]
    if refused:
        problem = Problem(415, "Unsupported content encoding",
                          f"Content-Encoding {', '.join(refused)[:100]!r} is not supported: "
                          "send the body as it is (identity)", kind="unsupported-content-encoding")
        problem.headers["Accept-Encoding"] = "identity"
        raise problem


def _check_batch_size(items: int, limit: int, exact: bool = True) -> None:
    if items > limit:
        held = f"{items}" if exact else f"more than {limit}"
        raise Problem(413, "Too many events in a batch",
                      f"the batch holds {held} events, over the limit of {limit} "
                      "(PMO_MAX_BATCH_EVENTS): send it in smaller batches",
                      kind="batch-too-large", limit=limit, items=items if exact else None)


def _item(raw: bytes) -> Inbound:
    """A batch item that orjson could not read with the rest: read on its own."""
    try:
        return _structured(orjson.loads(raw), raw)
    except orjson.JSONDecodeError as e:
        return Inbound(raw, error=f"not valid JSON: {e}")


def _structured(item: Any, body: bytes | Callable[[], bytes]) -> Inbound:
    # A batch item is written again only if it is refused (see ``Inbound.body``).
    if not isinstance(item, dict):
        return Inbound(body, error="a CloudEvent must be a JSON object")
    try:
        return Inbound(body, parse_structured(item))
    except MalformedEventError as e:
        return Inbound(body, error=str(e))


def _binary(body: bytes, request: Request) -> Inbound | None:
    """The message in binary content mode, or None if it is structured.

    The ``ce-*`` values are percent-decoded UTF-8 (the CloudEvents HTTP binding); the
    rejections log keeps the headers' bytes exactly as they came."""
    raw = tuple((name.decode("latin-1"), value) for name, value in request.scope["headers"]
                if name.startswith(b"ce-") or name == b"content-type")
    text = [(name, value.decode("latin-1")) for name, value in raw]
    try:
        attributes = binary_attributes(text, "ce-", percent_encoded=True)
        if attributes is None:
            return None
        return Inbound(body, parse_binary(attributes, body), headers=raw)
    except MalformedEventError as e:
        return Inbound(body, error=str(e), headers=raw)


def _store(services: Services, metrics: Metrics, messages: list[Inbound]) -> list[Result]:
    size = services.settings.ingest_batch_size
    results: list[Result] = []
    # One writer at a time: the application caches aggregates between batches, and
    # two threads deciding on the same cached aggregate would corrupt it. The store
    # takes one writer anyway, so nothing is lost; waiting for the views is outside.
    with services.extras["ingest_lock"]:
        for start in range(0, len(messages), size):
            results += services.ingest.submit(messages[start:start + size])
    metrics.count_ingest([r.status for r in results],
                         [m.event.type if m.event is not None else None for m in messages])
    positions = [r.position for r in results if r.position is not None]
    if positions and services.runner is not None:
        services.runner.wake()
        services.runner.wait_for(max(positions), READ_YOUR_WRITES_SECONDS)
    return results


def _single(services: Services, metrics: Metrics, message: Inbound) -> Response:
    result = _store(services, metrics, [message])[0]
    if result.status in SINGLE_STATUS:
        body = {"id": result.id, "source": result.source, "status": result.status,
                "position": result.position}
        return Response(orjson.dumps(body), SINGLE_STATUS[result.status],
                        media_type="application/json")
    reason = result.reason or result.status
    if result.status == "rejected":
        raise Problem(409, "Rejected by the PMO's rules", reason, kind=result.code or "rejected",
                      reason=reason, event_id=result.id)
    if message.event is None:  # the envelope itself is unreadable
        raise Problem(400, "Malformed CloudEvent", reason, kind="malformed-event", reason=reason)
    raise Problem(422, "Invalid event data", reason, kind="invalid-event-data", reason=reason,
                  event_id=result.id)


def _batch(services: Services, metrics: Metrics, messages: list[Inbound]) -> Response:
    results = _store(services, metrics, messages) if messages else []
    entries = []
    for message, result in zip(messages, results, strict=True):
        entry: dict[str, Any] = {"id": result.id, "status": result.status,
                                 "position": result.position}
        if result.status == "rejected":
            entry.update(reason=result.reason, code=result.code)
        elif result.status == "invalid":
            # The same split as a single event's 400 and 422.
            entry.update(reason=result.reason,
                         code="malformed-event" if message.event is None else "invalid-event-data")
        entries.append(entry)
    return Response(orjson.dumps({"results": entries}), 200, media_type="application/json")
