"""``pmo consume``: ``pmo.events`` -> one projection, through the embedded runner's own code.

Each poll batch goes to ``projection.process(events, tracking)``, which writes the
view and ``{"<topic>:<partition>": next offset}`` in one transaction of the
projection store. That store, not Kafka, is the source of truth for positions: on
every (re)assignment each partition is sought to the offset it holds (or to the
beginning), so an event changes a view exactly once across crashes and
rebalances; a re-delivered event is skipped by the projection (aggregate
version). Kafka offsets are committed too, asynchronously, only so that lag shows
per consumer group. Processes of one projection share one group and split its
partitions; a dead one's partitions move after ``SESSION_TIMEOUT_MS``.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata

from consumers.codec import EventDecoder
from consumers.membership import Membership
from consumers.rebuild import KafkaRebuild
from consumers.retry import connected
from consumers.topics import EVENTS, client_options, group_id, subscribe
from pmo.settings import Settings
from projections.base import REBUILDING, Projection
from projections.feed import RecordedEvent

log = logging.getLogger(__name__)

SESSION_TIMEOUT_MS = 10_000
# Also the rebalance timeout: how long the coordinator waits for every member to rejoin.
# A member killed in the middle of a rebalance stalls its whole group that long (seen in
# the two-consumer kill test with kafka-python's default of 5 minutes); a step between
# polls takes well under a second here.
MAX_POLL_INTERVAL_MS = 30_000
POLL_TIMEOUT_MS = 100
MAX_RECORDS = 5000
REBUILD_CHECK_S = 1.0  # how often a consumer looks for a rebuild request (one small query)


class ProjectionLike(Protocol):
    @property
    def name(self) -> str: ...

    def process(self, events: Sequence[RecordedEvent], tracking: Mapping[str, int]) -> None: ...

    def tracking(self) -> dict[str, int]: ...


def tracking_key(tp: TopicPartition) -> str:
    return f"{tp.topic}:{tp.partition}"


def projection_group(settings: Settings, name: str) -> str:
    return group_id(settings, f"pmo.projection.{name}")


def events_consumer(settings: Settings, group: str, **overrides: Any) -> KafkaConsumer:
    options: dict[str, Any] = {
        **client_options(settings), "group_id": group, "enable_auto_commit": False,
        "auto_offset_reset": "earliest", "max_poll_records": MAX_RECORDS,
        "session_timeout_ms": SESSION_TIMEOUT_MS, "heartbeat_interval_ms": 3000,
        "max_poll_interval_ms": MAX_POLL_INTERVAL_MS,
        # Small per-partition fetches: every poll then holds a similar stretch of the
        # store's log from each partition, which the merge below puts back in order.
        "fetch_max_bytes": 64 * 1024 * 1024, "max_partition_fetch_bytes": 1024 * 1024,
        **overrides}
    return connected(lambda: KafkaConsumer(**options), what=f"the consumer of {group}")


class SeekToStored(ConsumerRebalanceListener):  # type: ignore[misc]
    """On every assignment, each partition resumes at the offset the store holds for it."""

    def __init__(self, consumer: KafkaConsumer, stored: Callable[[], dict[str, int]],
                 name: str) -> None:
        self._consumer = consumer
        self._stored = stored
        self._name = name

    def on_partitions_revoked(self, revoked: Any) -> None:
        pass  # every processed batch is already durable with its offsets

    def on_partitions_assigned(self, assigned: Any) -> None:
        stored = self._stored()
        for tp in assigned:
            offset = stored.get(tracking_key(tp))
            if offset is None:
                self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, offset)
        log.info("%s: assigned %s", self._name, sorted(tracking_key(tp) for tp in assigned))


class ProjectionConsumer:
    def __init__(self, settings: Settings, projection: ProjectionLike,
                 decoder: EventDecoder, consumer: KafkaConsumer | None = None,
                 membership: Membership | None = None) -> None:
        self.projection = projection
        self._decoder = decoder
        self._settings = settings
        # A member kafka-python leaves stuck in a rebalance is replaced (see
        # consumers.membership); not one the caller made and passed in.
        self._membership: Membership | None = None
        if consumer is None:
            self._membership = membership or Membership()
            consumer = self._join()
        else:
            self._subscribe(consumer)
        self._consumer = consumer
        self.applied = 0
        # Told (projection, seconds) after each batch applied: the worker's metrics.
        self.on_applied: Callable[[str, float], None] | None = None
        self._rebuild: KafkaRebuild | None = None
        self._rebuild_checked = 0.0

    def _subscribe(self, consumer: KafkaConsumer) -> None:
        subscribe(consumer, [self._settings.topic(EVENTS)], listener=SeekToStored(
            consumer, self.projection.tracking, self.projection.name))

    def _join(self) -> KafkaConsumer:
        consumer = events_consumer(self._settings,
                                   projection_group(self._settings, self.projection.name))
        self._subscribe(consumer)
        return consumer

    def step(self, timeout_ms: int = POLL_TIMEOUT_MS) -> int:
        applied = self._step(timeout_ms)
        self._rebuild_step()
        return applied

    def _rebuild_step(self) -> None:
        """A blue/green rebuild, when one is asked for (``consumers.rebuild``): one poll of
        it per step, between the live batches; the swap once it has caught up."""
        projection = self.projection
        if not isinstance(projection, Projection):
            return
        if self._rebuild is None:
            now = time.monotonic()
            if now - self._rebuild_checked < REBUILD_CHECK_S:
                return
            self._rebuild_checked = now
            first = TopicPartition(self._settings.topic(EVENTS), 0)
            if (not projection.tracking().get(REBUILDING)
                    or first not in self._consumer.assignment()):
                return  # nothing asked, or another member of the group builds it
            try:
                self._rebuild = KafkaRebuild(self._settings, projection, self._decoder)
            except LookupError as e:
                log.warning("%s: rebuild postponed: %s", projection.name, e)
                return
        live = projection.tracking()
        if not live.get(REBUILDING):  # another member's rebuild was swapped in first
            self._rebuild.next.discard()
            self._rebuild.close()
            self._rebuild = None
            return
        if self._rebuild.step(live):
            self._rebuild.swap()
            self._rebuild.close()
            self._rebuild = None

    def _step(self, timeout_ms: int) -> int:
        if self._membership is not None:
            self._consumer = self._membership.replace_if_stuck(
                self._consumer, self._join, self.projection.name)
        polled = self._consumer.poll(timeout_ms=timeout_ms)
        if not polled:
            return 0
        tracking: dict[str, int] = {}
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        decoded = []
        for tp, messages in polled.items():
            decoded.append([self._decoder.decode(m.value, m.headers, m.key) for m in messages])
            tracking[tracking_key(tp)] = messages[-1].offset + 1
            offsets[tp] = OffsetAndMetadata(messages[-1].offset + 1, "", -1)
        # Each partition is in store order; merged, the batch is in store order too, so
        # the audit chain appends instead of holding events back for a lagging partition.
        # (A republished stretch breaks "in order", never the order within a partition.)
        events = list(heapq.merge(*decoded, key=_position))
        # A projection store failure propagates: crash loudly, restart from stored offsets.
        started = time.perf_counter()
        self.projection.process(events, tracking)
        if self.on_applied is not None:
            self.on_applied(self.projection.name, time.perf_counter() - started)
        self.applied += len(events)
        self._consumer.commit_async(offsets)
        return len(events)

    def close(self) -> None:
        if self._rebuild is not None:
            self._rebuild.close()
        self._consumer.close(autocommit=False)


def _position(event: RecordedEvent) -> int:
    return event.position
