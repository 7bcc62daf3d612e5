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
            ours = _provenance(refusal)
            key = self.keys.get(refusal.origin, _subject_key(refusal))
            key, value, headers = fit(refusal.raw, key, [*refusal.headers, *ours], len(ours))
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
        added: int = 0) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """The dead letter's key, value and headers, within ``DEAD_LETTER_MAX_BYTES``.

    The original plus our headers could be over what the producer and the broker
    take (1 MiB by default); a send that failed on every re-read would stall the
    partition (it crashed ``pmo ingest`` on each start). The last ``added`` of
    ``headers`` are ours and always kept. What gives way, in this order: the value's
    tail (its head is kept, with ``pmo_truncated_from`` and ``pmo_sha256``), then
    the original headers (a message can carry 1 MB of them: all but its ``ce_*`` and
    ``content-type`` go, with ``pmo_headers_dropped`` and ``pmo_headers_sha256``), then
    a key near 1 MB (its head, with ``pmo_key_sha256``). The whole message is still in
    ``pmo.inbound``, for its retention.
    """
    if _size(value, key, headers) <= DEAD_LETTER_MAX_BYTES:
        return key, value, headers
    original, ours = headers[:len(headers) - added], headers[len(headers) - added:]
    marks: list[tuple[str, bytes]] = []
    if original and _size(b"", key, headers) + FIT_RESERVE > DEAD_LETTER_MAX_BYTES:
        # The CloudEvent's own headers stay if they are small (they name the event: its
        # receipt and the rejection log find it by them); the rest go.
        essential: list[tuple[str, bytes]] = []
        dropped: list[tuple[str, bytes]] = []
        for h in original:
            (essential if h[0].lower().startswith(("ce_", "content-type")) else dropped).append(h)
        if _size(b"", None, essential) > ESSENTIAL_MAX_BYTES:
            essential, dropped = [], original
        digest = hashlib.sha256()
        for name, v in dropped:
            digest.update(b"%d:%s%d:%s" % (len(name.encode()), name.encode(), len(v), v))
        marks = [("pmo_headers_dropped", str(len(dropped)).encode()),
                 ("pmo_headers_sha256", digest.hexdigest().encode())]
        original = essential
    if key is not None and len(key) + _size(b"", None, [*original, *ours, *marks]) \
            + 2 * FIT_RESERVE \
            > DEAD_LETTER_MAX_BYTES:  # a key near 1 MB: its head, and its digest
        marks.append(("pmo_key_sha256", hashlib.sha256(key).hexdigest().encode()))
        key = key[:DEAD_LETTER_MAX_BYTES // 2]
    kept_headers = [*original, *ours, *marks]
    room = DEAD_LETTER_MAX_BYTES - _size(b"", key, kept_headers) - FIT_RESERVE
    if len(value) <= room:
        return key, value, kept_headers
    return key, value[:max(0, room)], [*kept_headers,
                                  ("pmo_truncated_from", str(len(value)).encode()),
                                  ("pmo_sha256", hashlib.sha256(value).hexdigest().encode())]


# A record header's own framing on the wire (two varints): counted too, or 10,000
# small headers were 30 KB over the estimate.
HEADER_FRAMING = 10
FIT_RESERVE = 400  # the marks fit() may add, with room to spare
ESSENTIAL_MAX_BYTES = 64 * 1024  # ce_* and content-type headers kept when others go


def _size(value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]) -> int:
    return len(value) + len(key or b"") + sum(len(k.encode()) + len(v) + HEADER_FRAMING
                                              for k, v in headers)


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
