"""Dead letters: refused inbound messages, kept whole, on ``pmo.inbound.dlq`` and ``.rejected``.

Each dead letter has the original key, value and headers, plus ``pmo_reason``,
``pmo_kind`` (dlq or rejected), ``pmo_source_topic``, ``pmo_source_partition``,
``pmo_source_offset`` and ``pmo_received_at``. ``flush()`` returns only when the
broker has every one of them (or raises), so the ingest worker commits its
offsets only after the refusals are as durable as the stored events.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from kafka import KafkaProducer

from consumers.retry import connected
from consumers.topics import DLQ, REJECTED, client_options
from ingest.service import Refusal
from pmo.settings import Settings

SEND_TIMEOUT_S = 150.0  # longer than the producer's own delivery timeout (120 s)
REASON_MAX_BYTES = 4096
# A dead letter (value, key and headers) stays under the default 1 MiB of the producer
# and the broker, with room for the record's own framing.
DEAD_LETTER_MAX_BYTES = 1_000_000


def producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    """An idempotent producer (acks=all): retries never duplicate or reorder a partition."""
    options: dict[str, Any] = {**client_options(settings), "enable_idempotence": True,
                               "acks": "all", "linger_ms": 5, **overrides}
    return connected(lambda: KafkaProducer(**options), what="a producer")


class KafkaRefusalSink:
    """A ``RefusalSink`` that publishes every refusal to its dead-letter topic."""

    def __init__(self, producer: KafkaProducer, settings: Settings) -> None:
        self._producer = producer
        self._topics = {"dlq": settings.topic(DLQ), "rejected": settings.topic(REJECTED)}
        self._pending: list[Any] = []
        # origin -> the original Kafka key; the ingest worker fills it per batch.
        self.keys: dict[str, bytes | None] = {}
        self.sent = {"dlq": 0, "rejected": 0}

    def record_refusals(self, refusals: Sequence[Refusal]) -> None:
        for refusal in refusals:
            headers = [*refusal.headers, *_provenance(refusal)]
            key = self.keys.get(refusal.origin, _subject_key(refusal))
            value, headers = fit(refusal.raw, key, headers)
            self._pending.append(self._producer.send(
                self._topics[refusal.kind], key=key, value=value, headers=headers))
            self.sent[refusal.kind] += 1

    def flush(self) -> None:
        """Wait until the broker acknowledged every dead letter sent; raise if one failed."""
        pending, self._pending = self._pending, []
        if pending:
            self._producer.flush(timeout=SEND_TIMEOUT_S)
        for future in pending:
            future.get(timeout=SEND_TIMEOUT_S)


def fit(value: bytes, key: bytes | None, headers: list[tuple[str, bytes]],
        ) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The dead letter's value and headers, within ``DEAD_LETTER_MAX_BYTES``.

    The original plus our headers could be over what the producer and the broker
    take (1 MiB by default); a send that failed on every re-read would stall the
    partition. Such a dead letter keeps the head of the value, with the original's
    size and SHA-256 (the whole message is still in ``pmo.inbound``, for its retention).
    """
    size = len(value) + len(key or b"") + sum(len(k) + len(v) for k, v in headers)
    if size <= DEAD_LETTER_MAX_BYTES:
        return value, headers
    kept = value[:max(0, DEAD_LETTER_MAX_BYTES - (size - len(value)) - 200)]
    return kept, [*headers, ("pmo_truncated_from", str(len(value)).encode()),
                  ("pmo_sha256", hashlib.sha256(value).hexdigest().encode())]


def _subject_key(refusal: Refusal) -> bytes | None:
    return refusal.subject.encode() if refusal.subject else None


def _provenance(refusal: Refusal) -> list[tuple[str, bytes]]:
    headers = [
        ("pmo_reason", refusal.reason.encode()[:REASON_MAX_BYTES]),
        ("pmo_kind", refusal.kind.encode()),
        ("pmo_received_at", refusal.received_at.isoformat().encode()),
    ]
    parts = refusal.origin.split(":")
    if len(parts) == 4 and parts[0] == "kafka":  # kafka:<topic>:<partition>:<offset>
        headers += [("pmo_source_topic", parts[1].encode()),
                    ("pmo_source_partition", parts[2].encode()),
                    ("pmo_source_offset", parts[3].encode())]
    else:
        headers.append(("pmo_source", refusal.origin.encode()))
    return headers
