"""``pmo ingest``: ``pmo.inbound`` -> the event store, with dead letters; offsets last.

One poll batch is one pass: read every message (both content modes), run the
batch through the same ``IngestService`` as ``POST /v1/events`` (one store
transaction), publish its refusals to the DLQ and rejected topics and wait for the
broker's acknowledgement, and only then commit the batch's offsets. A crash
anywhere before the commit re-reads the batch: stored messages answer
``duplicate`` (the receipt is unique in the store), refusals are published again
(dead letters are at-least-once).
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from consumers.deadletters import KafkaRefusalSink
from consumers.inbound import origin, read
from consumers.membership import Membership
from consumers.retry import commit, connected
from consumers.topics import INBOUND, client_options, group_id, subscribe
from ingest.service import Inbound, Result
from pmo.settings import Settings

log = logging.getLogger(__name__)

GROUP = "pmo.ingest"
POLL_TIMEOUT_MS = 200


class Submitter(Protocol):
    def submit(self, messages: Sequence[Inbound]) -> list[Result]: ...


def inbound_consumer(settings: Settings) -> KafkaConsumer:
    consumer = connected(lambda: KafkaConsumer(
        **client_options(settings),
        group_id=group_id(settings, GROUP), enable_auto_commit=False,
        auto_offset_reset="earliest", max_poll_records=settings.ingest_batch_size,
        # A killed worker's partitions move to the others after 10 s, not 45.
        session_timeout_ms=10_000, heartbeat_interval_ms=3000,
        # A message over the limit must still be fetched, to be dead-lettered.
        max_partition_fetch_bytes=max(1024 * 1024, settings.max_body_bytes * 2),
        # A transactional publisher's aborted messages are not events (the default,
        # read_uncommitted, stored them); committed ones are read once committed.
        isolation_level="read_committed",
        # A partition an operator adds to pmo.inbound is read within 30 s, not 5 minutes.
        metadata_max_age_ms=30_000),
        what="the inbound consumer")
    subscribe(consumer, [settings.topic(INBOUND)])
    return consumer


class InboundWorker:
    def __init__(self, settings: Settings, ingest: Submitter, sink: KafkaRefusalSink,
                 consumer: KafkaConsumer,
                 rejoin: Callable[[], KafkaConsumer] | None = None,
                 membership: Membership | None = None) -> None:
        self._settings = settings
        self._ingest = ingest
        self._sink = sink
        self._consumer = consumer
        # With ``rejoin``, a member kafka-python leaves stuck in a rebalance is replaced
        # by a new one (consumers.membership); the group's committed offsets, written
        # only after each batch is stored, say where it resumes.
        self._rejoin = rejoin
        self._membership = (membership or Membership()) if rejoin is not None else None
        self.outcomes: Counter[str] = Counter()
        self._done: dict[TopicPartition, int] = {}  # the offsets this worker committed

    def close(self) -> None:
        self._consumer.close(autocommit=False)

    def run(self, stop: threading.Event, between: Callable[[], object] | None = None) -> None:
        """Step until ``stop``; ``between`` runs after each step (the parked retries)."""
        batches = 0
        while not stop.is_set():
            if self.step():
                batches += 1
                if batches % 100 == 0:
                    log.info("ingest outcomes so far: %s", dict(self.outcomes))
            if between is not None:
                between()
        log.info("ingest stopping; outcomes: %s", dict(self.outcomes))

    def step(self) -> int:
        """One batch, end to end; returns how many messages it handled."""
        if self._rejoin is not None and self._membership is not None:
            self._consumer = self._membership.replace_if_stuck(self._consumer, self._rejoin,
                                                               "ingest")
        polled = self._consumer.poll(timeout_ms=POLL_TIMEOUT_MS,
                                     max_records=self._settings.ingest_batch_size)
        # Partitions keep order per subject only. Merging them by producer timestamp
        # keeps the order in which publishers sent events about different aggregates,
        # as far as one poll reaches (see docs/kafka.md, "Ordering").
        records: list[Any] = list(heapq.merge(*polled.values(), key=_timestamp))
        if not records:
            self._commit_skipped()
            return 0
        inbound = []
        self._sink.keys = {}
        for m in records:
            where = origin(m.topic, m.partition, m.offset)
            self._sink.keys[where] = m.key
            inbound.append(read(m.value, m.headers or [], where=where,
                                max_bytes=self._settings.max_body_bytes))
        # A store failure propagates: the process crashes loudly and re-reads the batch.
        results = self._ingest.submit(inbound)
        self._sink.flush()
        self.outcomes.update(r.status for r in results)
        self._commit(records)
        return len(records)

    def _commit(self, records: list[Any]) -> None:
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for m in records:
            tp = TopicPartition(m.topic, m.partition)
            if tp not in offsets or offsets[tp].offset <= m.offset:
                offsets[tp] = OffsetAndMetadata(m.offset + 1, "", -1)
        if commit(self._consumer, offsets):  # a re-read answers duplicate: see the docstring
            self._done.update({tp: o.offset for tp, o in offsets.items()})

    def _commit_skipped(self) -> None:
        """After an empty poll, commit the offsets the consumer moved past without a record
        to hand: a transaction's commit or abort marker, an aborted transaction's messages.
        Each takes an offset of ``pmo.inbound``; left uncommitted, the pipeline's
        ``inbound`` stayed above 0 for good after a transactional publisher (every record
        before them is committed already: a step commits its batch before the next poll)."""
        moved: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp in self._consumer.assignment():
            try:
                position = self._consumer.position(tp, timeout_ms=0)
            except KafkaError:  # revoked meanwhile: its next owner commits
                continue
            if position is not None and position > self._done.get(tp, -1):
                moved[tp] = OffsetAndMetadata(position, "", -1)
        if moved and commit(self._consumer, moved):
            self._done.update({tp: o.offset for tp, o in moved.items()})


def _timestamp(message: Any) -> int:
    return int(message.timestamp)
