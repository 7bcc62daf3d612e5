"""The API's ``Ingestor`` in Kafka mode: validate, publish to ``pmo.inbound``, answer ``queued``.

Every event is checked as ``pmo ingest`` will check it (envelope, known type, data
schema), so a publisher learns of a malformed event at once (``invalid``, with the
reason); the invalid one is also dead-lettered to ``pmo.inbound.dlq``, as the
embedded mode records it, so bad input never disappears. A valid event is
published in structured mode, keyed by ``subject``; ``submit`` returns only after
the broker acknowledged every message, so ``queued`` means durable in Kafka.
Domain rules run later in ``pmo ingest`` (rejections go to ``pmo.inbound.rejected``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from kafka import KafkaProducer

from consumers.deadletters import SEND_TIMEOUT_S, fit, producer
from consumers.topics import DLQ, INBOUND, ensure_topics
from ingest.cloudevents import CloudEvent, MalformedEventError, printable
from ingest.service import Inbound, Result, to_command
from pmo.settings import Settings

STRUCTURED = [("content-type", b"application/cloudevents+json")]


def structured_value(event: CloudEvent) -> bytes:
    body = {k: v for k, v in event.model_dump(mode="json").items() if v is not None}
    return orjson.dumps(body)


class KafkaIngestor:
    def __init__(self, settings: Settings, kafka_producer: KafkaProducer) -> None:
        self._producer = kafka_producer
        self._inbound = settings.topic(INBOUND)
        self._dlq = settings.topic(DLQ)

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaIngestor:
        """Creates the topics if missing (the API may start before any worker)."""
        ensure_topics(settings)
        return cls(settings, producer(settings))

    def submit(self, messages: Sequence[Inbound]) -> list[Result]:
        results: list[Result] = []
        futures: list[Any] = []
        for message in messages:
            event = message.event
            try:
                if event is None:
                    raise MalformedEventError(message.error or "unreadable message")
                to_command(event)
            except MalformedEventError as e:
                results.append(Result("invalid", event.id if event else None,
                                      event.source if event else None,
                                      reason=str(e), code="invalid"))
                key = event.subject.encode() if event else None
                ours = [("pmo_reason", printable(str(e)).encode()), ("pmo_kind", b"dlq"),
                        ("pmo_source", message.origin.encode())]
                key, value, headers = fit(message.raw, key, [*message.headers, *ours],
                                          len(ours))
                futures.append(self._producer.send(self._dlq, key=key, value=value,
                                                   headers=headers))
                continue
            futures.append(self._producer.send(
                self._inbound, key=event.subject.encode(), value=structured_value(event),
                headers=STRUCTURED))
            results.append(Result("queued", event.id, event.source))
        for future in futures:
            future.get(timeout=SEND_TIMEOUT_S)  # raises if the broker did not take it
        return results

    def close(self) -> None:
        self._producer.close()
