"""Ingest: the one path every inbound CloudEvent takes, from HTTP or from Kafka.

decode -> validate envelope and data -> decide -> store, in batches: a batch is
stored in one transaction. Each message gets exactly one outcome:
``accepted`` (stored, with its position), ``duplicate`` (stored before; the
first position), ``rejected`` (the domain refused it, with the reason) or
``invalid`` (malformed or schema-invalid, with the reason). Refused messages go
to the ``RefusalSink`` with their original bytes, so nothing is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

from eventsourcing.persistence import InterfaceError, InternalError, OperationalError
from pydantic import ValidationError

from domain.application import Outcome, PmoApplication
from domain.commands import Command
from domain.values import Envelope
from ingest.cloudevents import CloudEvent, MalformedEventError, describe, printable
from ingest.schemas import TYPES

log = logging.getLogger(__name__)

Status = Literal["accepted", "duplicate", "rejected", "invalid", "queued"]


@dataclass(frozen=True, slots=True)
class Result:
    status: Status
    id: str | None = None
    source: str | None = None
    position: int | None = None
    reason: str | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """A message that was not stored, kept whole with why."""

    kind: Literal["dlq", "rejected"]
    reason: str
    raw: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    source: str | None = None
    event_id: str | None = None
    type: str | None = None
    subject: str | None = None
    origin: str = "http"
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    code: str | None = None  # the domain's refusal code (e.g. unknown-aggregate), if any


class RefusalSink(Protocol):
    def record_refusals(self, refusals: Sequence[Refusal]) -> None: ...


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message as received: parsed, or the reason it could not be.

    ``body`` is the message's bytes, or for an item of a JSON batch a function
    that writes the item again: only a refused message needs its bytes, and
    writing every item of every batch cost more than parsing its envelope.
    """

    body: bytes | Callable[[], bytes]
    event: CloudEvent | None = None
    error: str | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    origin: str = "http"

    @property
    def raw(self) -> bytes:
        """The message as received (a batch item: as ``orjson.dumps`` writes it)."""
        body = self.body
        return body if isinstance(body, bytes) else body()


def to_command(event: CloudEvent) -> tuple[Envelope, Command]:
    """Validate the data of ``event`` for its type and build its command."""
    try:
        schema, build = TYPES[event.type]
    except KeyError:
        raise MalformedEventError(
            printable(f"type: unknown event type '{event.type}'")) from None
    try:
        data = schema.model_validate(event.data)
    except ValidationError as e:
        raise MalformedEventError("data." + describe(e)) from None
    return event.envelope(), build(event.subject, data)


class IngestService:
    def __init__(self, app: PmoApplication, refusals: RefusalSink | None = None) -> None:
        self.app = app
        self.refusals = refusals

    def submit(self, messages: Sequence[Inbound]) -> list[Result]:
        """Store a batch in one transaction; one result per message, in order."""
        results: list[Result | None] = [None] * len(messages)
        valid: list[int] = []
        items: list[tuple[Envelope, Command]] = []
        refused: list[Refusal] = []
        for i, message in enumerate(messages):
            event = message.event
            try:
                if event is None:
                    raise MalformedEventError(message.error or "unreadable message")
                items.append(to_command(event))
                valid.append(i)
            except MalformedEventError as e:
                reason = printable(str(e))
                results[i] = Result("invalid", *_ids(event), reason=reason, code="invalid")
                refused.append(_refusal("dlq", reason, message))
        for i, outcome in zip(valid, self._record(items), strict=True):
            event = messages[i].event
            if isinstance(outcome, Exception):
                reason = printable(f"the event could not be stored: {type(outcome).__name__}: "
                                   f"{outcome}")
                results[i] = Result("invalid", *_ids(event), reason=reason, code="invalid")
                refused.append(_refusal("dlq", reason, messages[i]))
                continue
            results[i] = Result(outcome.status, *_ids(event), position=outcome.position,
                                reason=outcome.reason, code=outcome.code)
            if outcome.status == "rejected":
                refused.append(_refusal("rejected", outcome.reason or "", messages[i],
                                        outcome.code))
        if refused and self.refusals is not None:
            self.refusals.record_refusals(refused)
        done = [r for r in results if r is not None]
        _log_outcomes(done)
        return done


    def _record(self, items: list[tuple[Envelope, Command]]) -> list[Outcome | Exception]:
        """The batch's outcomes; if storing it fails for a reason other than the store
        being unwell, each event is stored on its own, and the one that still fails is
        its own outcome (refused, with the error), so it cannot sink its batch nor stall
        a Kafka partition by failing on every re-read."""
        try:
            return list(self.app.record(items))
        except Exception as e:
            if _unwell(e):
                raise
            # Which events: the one that fails again is logged on its own (its outcome).
            log.exception("a batch of %d events could not be stored; storing one by one",
                          len(items), extra=_batch_fields([envelope for envelope, _ in items]))
        outcomes: list[Outcome | Exception] = []
        for item in items:
            try:
                outcomes += self.app.record([item])
            except Exception as e:
                if _unwell(e):
                    raise
                outcomes.append(e)
        return outcomes


def _unwell(error: Exception) -> bool:
    """The store (not the message) failed: unreachable, or too many write conflicts.
    Such a failure propagates: HTTP answers 5xx, ``pmo ingest`` re-reads the batch."""
    return (isinstance(error, OperationalError | InterfaceError | InternalError | OSError)
            or type(error) is RuntimeError)


# Every record of the ingest path names its events by CloudEvent ``source`` and ``id``
# (``extra=``: JSON fields with PMO_LOG_FORMAT=json, ``key="value"`` after the text).
MAX_LOGGED_IDS = 50  # a batch record lists at most this many


def _log_outcomes(results: Sequence[Result]) -> None:
    """Refusals at INFO (rare, and what an operator looks for); the rest at DEBUG."""
    debug = log.isEnabledFor(logging.DEBUG)
    for r in results:
        fields = {"source": r.source, "event_id": r.id}
        if r.status in ("invalid", "rejected"):
            log.info("%s: %s", r.status, r.reason, extra=fields)
        elif debug:
            log.debug("%s at position %s", r.status, r.position, extra=fields)


def _batch_fields(envelopes: Sequence[Envelope]) -> dict[str, object]:
    shown = envelopes[:MAX_LOGGED_IDS]
    return {"source": [e.source for e in shown], "event_id": [e.event_id for e in shown]}


def _ids(event: CloudEvent | None) -> tuple[str | None, str | None]:
    return (event.id, event.source) if event is not None else (None, None)


def _refusal(kind: Literal["dlq", "rejected"], reason: str, message: Inbound,
             code: str | None = None) -> Refusal:
    event = message.event
    return Refusal(
        kind, reason, message.raw, message.headers,
        source=event.source if event else None, event_id=event.id if event else None,
        type=event.type if event else None, subject=event.subject if event else None,
        origin=message.origin, code=code)
