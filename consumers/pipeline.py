"""How far the pipeline ahead of the views lags (CONTRACT section 11).

- ``inbound``: messages on ``pmo.inbound`` not yet ingested, the log end of each
  partition minus the ingest group's committed offset (0 for a partition with no
  commit yet counts from its log start), summed. ``pmo ingest`` commits only after
  the batch's outcome is durable, so 0 means every published message has its outcome.
- ``parked``: inbound events parked because an aggregate they name does not exist
  yet (``consumers.parking``); they are counted in ``inbound`` too, since they are
  not ingested yet: a bulk load is not done while its children wait for parents.
- ``relay``: stored events not yet on ``pmo.events``, the store's head minus the
  relay's position (``pmo_relay_positions``, written after the broker's acks).

With the views' watermark lags, a reader is current when all of them are 0, *if*
each is measured after the one before it in the pipeline: inbound, then parked,
then relay, then the views. An event moves forward only (inbound -> stored or
parked -> stored -> relayed -> applied), so a stage read at 0 after the stage
before it read 0 has seen everything that left that stage; read the other way
round, an event can slip through unseen (parked and committed between a read of
``parked`` and one of ``inbound``; stored and relayed after the views were read).
``status()`` keeps this order, and callers read the views after it.

``recent(max_age_s)`` is what the API and its ``/metrics`` use: the last
measurement if it began at most ``max_age_s`` ago (1 s by default), else a new one;
concurrent callers share one measurement in flight (single flight), so a scrape
or a dashboard costs the broker at most a few small requests a second. A cached 0
is a 0 measured then: a reading never turns an unknown into 0 (an error is
raised and not cached, and so is a topic the broker does not know).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from consumers.ingest_worker import GROUP
from consumers.parking import Parking
from consumers.positions import RelayPositions
from consumers.topics import EVENTS, INBOUND, client_options, group_id
from pmo.settings import Settings


class Pipeline:
    def __init__(self, settings: Settings, recorder: Any) -> None:
        self._settings = settings
        self._recorder = recorder
        self._lock = threading.Lock()
        self._admin: KafkaAdminClient | None = None
        self._consumer: KafkaConsumer | None = None
        self._relay: RelayPositions | None = None
        self._parking: Parking | None = None
        self._measuring = threading.Lock()  # one measurement in flight
        self._last: tuple[float, dict[str, int]] | None = None  # (began, figures)

    def inbound(self) -> int:
        topic = self._settings.topic(INBOUND)
        with self._lock:
            if self._admin is None or self._consumer is None:
                self._admin = KafkaAdminClient(**client_options(self._settings))
                self._consumer = KafkaConsumer(**client_options(self._settings))
            partitions = _partitions(self._admin, topic)
            if not partitions <= (self._consumer.partitions_for_topic(topic) or set()):
                # A partition added since this consumer read its metadata: kafka-python
                # cannot ask for offsets of a partition it does not know; a new one can.
                self._consumer.close()
                self._consumer = None  # a failed re-creation makes the next call start over
                self._consumer = KafkaConsumer(**client_options(self._settings))
                if not partitions <= (self._consumer.partitions_for_topic(topic) or set()):
                    raise LookupError(f"partitions of {topic} not in the metadata yet")
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            if not tps:  # not created yet, or metadata not to be had: unknown, not 0
                raise LookupError(f"no partitions of {topic} known to the broker")
            ends = self._consumer.end_offsets(tps)
            starts = self._consumer.beginning_offsets(tps)
            group = group_id(self._settings, GROUP)
            committed = self._admin.list_group_offsets({group: tps}).get(group, {})
        total = 0
        for tp in tps:
            done = committed.get(tp)
            offset = done.offset if done is not None and done.offset >= 0 else starts[tp]
            total += max(ends[tp] - offset, 0)
        return total

    def relay(self) -> int:
        with self._lock:
            if self._relay is None:
                self._relay = RelayPositions(self._recorder)
            relayed = self._relay.get(self._settings.topic(EVENTS))
        head = self._recorder.max_notification_id() or 0
        return max(head - relayed, 0)

    def parked(self) -> int:
        with self._lock:
            if self._parking is None:
                self._parking = Parking(self._recorder)
        return self._parking.count()

    def status(self) -> dict[str, int]:
        """Measured now, stage after stage in the pipeline's order (see the docstring)."""
        waiting = self.inbound()
        parked = self.parked()
        return {"inbound": waiting + parked, "relay": self.relay(), "parked": parked}

    def recent(self, max_age_s: float = 1.0) -> dict[str, int]:
        """``status()`` begun at most ``max_age_s`` ago; callers share one in flight."""
        asked = time.monotonic()
        last = self._last
        if last is not None and asked - last[0] <= max_age_s:
            return dict(last[1])
        with self._measuring:
            last = self._last
            if last is not None and last[0] >= asked:  # begun while this caller waited
                return dict(last[1])
            began = time.monotonic()
            figures = self.status()
            self._last = (began, figures)
            return dict(figures)

    def close(self) -> None:
        with self._lock:
            if self._admin is not None:
                self._admin.close()
            if self._consumer is not None:
                self._consumer.close()
            self._admin = self._consumer = None


def _partitions(admin: KafkaAdminClient, topic: str) -> set[int]:
    """The topic's partitions as the broker has them now. The clients' cached metadata
    (up to 5 minutes old) did not know a partition an operator had just added, and a
    message waiting there was left out: ``inbound`` read 0 while it waited."""
    found: set[int] = set()
    for described in admin.describe_topics([topic]):
        if described.get("name") == topic and not described.get("error_code"):
            found.update(int(p["partition_index"]) for p in described.get("partitions", ())
                         if not p.get("error_code"))
    return found
