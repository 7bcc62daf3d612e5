"""``pmo consume rejections``: dead-letter topics -> the log of ``GET /v1/rejections``.

Reads ``pmo.inbound.dlq`` and ``pmo.inbound.rejected`` in its own consumer group
and records each dead letter as the ``Refusal`` it was (reason, original bytes and
headers, provenance) in the projection store, then commits the offsets. The log
is at-least-once: a crash between the two re-records that one batch.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from kafka import KafkaConsumer

from consumers.inbound import read
from consumers.retry import retrying
from consumers.topics import DLQ, REJECTED, client_options, group_id, subscribe
from ingest.service import Refusal, RefusalSink
from pmo.settings import Settings

GROUP = "pmo.projection.rejections"
OURS = "pmo_"  # headers the dead-letter producer added


def refusal_of(message: Any, settings: Settings) -> Refusal:
    """The refusal a dead letter carries; ids read from the original bytes where possible."""
    headers = [(k, v or b"") for k, v in message.headers or []]
    ours = {k: v.decode(errors="replace") for k, v in headers if k.startswith(OURS)}
    original = tuple((k, v) for k, v in headers if not k.startswith(OURS))
    kind: Literal["dlq", "rejected"] = (
        "rejected" if ours.get("pmo_kind") == "rejected"
        or message.topic == settings.topic(REJECTED) else "dlq")
    if "pmo_source_topic" in ours:
        origin = (f"kafka:{ours['pmo_source_topic']}:{ours.get('pmo_source_partition')}:"
                  f"{ours.get('pmo_source_offset')}")
    else:
        origin = ours.get("pmo_source", f"kafka:{message.topic}")
    event = read(message.value, original, where=origin, max_bytes=2**31).event
    try:
        received = datetime.fromisoformat(ours["pmo_received_at"])
    except (KeyError, ValueError):
        received = datetime.fromtimestamp(message.timestamp / 1000, UTC)
    return Refusal(kind, ours.get("pmo_reason", "no reason recorded"), message.value or b"",
                   original, source=event.source if event else None,
                   event_id=event.id if event else None, type=event.type if event else None,
                   subject=event.subject if event else None, origin=origin,
                   received_at=received)


class RejectionConsumer:
    name = "rejections"

    def __init__(self, settings: Settings, log: RefusalSink,
                 consumer: KafkaConsumer | None = None) -> None:
        self._settings = settings
        self._log = log
        if consumer is None:
            consumer = KafkaConsumer(
                **client_options(settings), group_id=group_id(settings, GROUP),
                enable_auto_commit=False, auto_offset_reset="earliest",
                max_poll_records=1000, session_timeout_ms=10_000)
            subscribe(consumer, [settings.topic(DLQ), settings.topic(REJECTED)])
        self._consumer = consumer
        self.recorded = 0

    def step(self, timeout_ms: int = 100) -> int:
        polled = self._consumer.poll(timeout_ms=timeout_ms)
        refusals = [refusal_of(m, self._settings) for batch in polled.values() for m in batch]
        if not refusals:
            return 0
        self._log.record_refusals(refusals)
        retrying(self._consumer.commit, what="committing offsets")
        self.recorded += len(refusals)
        return len(refusals)

    def close(self) -> None:
        self._consumer.close(autocommit=False)
