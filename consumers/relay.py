"""``pmo relay``: the event store's notification log -> ``pmo.events``, every event, in order.

Each cycle re-reads the log after the relay's durable position, publishes what it
finds (see ``consumers.codec`` for the message), waits until the broker
acknowledged all of it (idempotent producer, acks=all), and only then advances
the position. So nothing is skipped; a crash between publishing and saving the
position republishes identical messages, which consumers skip by aggregate
version. One aggregate's events share a key, hence a partition, and the
idempotent producer keeps a partition in send order: store order per aggregate.

On PostgreSQL the recorder takes an exclusive table lock per insert, so
notification ids become visible in order and reading "after my position" cannot
miss a late commit (this holds while ``POSTGRES_ENABLE_DB_FUNCTIONS`` stays off).
Run one relay per store and topic: two would publish everything twice.
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper
from kafka import KafkaProducer

from consumers.codec import encode
from consumers.deadletters import SEND_TIMEOUT_S
from consumers.positions import RelayPositions
from consumers.retry import retrying

log = logging.getLogger(__name__)

BATCH = 5000


class Relay:
    def __init__(self, recorder: Any, kafka_producer: KafkaProducer, topic: str,
                 idle_s: float = 0.02, batch: int = BATCH,
                 mapper: Mapper[UUID] | None = None) -> None:
        self._recorder = recorder
        self._mapper = mapper  # for a configured cipher or compressor (see codec.encode)
        self._producer = kafka_producer
        self._topic = topic
        self._positions = RelayPositions(recorder)
        self.position = self._positions.get(topic)
        self._idle_s = idle_s
        self._batch = batch
        self.published = 0

    def run(self, stop: threading.Event) -> None:
        log.info("relay to %s from position %d", self._topic, self.position)
        while not stop.is_set():
            # A broker outage fails a cycle before the position moves; the retry re-reads.
            if retrying(self.step, what="relaying") == 0:
                stop.wait(self._idle_s)
        log.info("relay stopping at position %d (%d published)", self.position, self.published)

    def step(self) -> int:
        """Publish the next batch after the position; return how many were published."""
        notifications = self._recorder.select_notifications(
            self.position, self._batch, inclusive_of_start=False)
        if not notifications:
            return 0
        futures = []
        prev = self.position
        for n in notifications:
            key, value, headers = encode(n, prev, self._mapper)
            futures.append(self._producer.send(self._topic, key=key, value=value,
                                               headers=headers))
            prev = n.id
        self._producer.flush(timeout=SEND_TIMEOUT_S)
        for future in futures:
            future.get(timeout=SEND_TIMEOUT_S)
        self._positions.set(self._topic, prev)
        self.position = prev
        self.published += len(notifications)
        return len(notifications)
