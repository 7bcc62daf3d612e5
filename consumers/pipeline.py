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

With the views' watermark lags, a reader is current when all of them are 0. The
clients stay open (one admin, one group-less consumer) and are used under a lock:
each reading costs two small requests to the broker.
"""

from __future__ import annotations

import threading
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

    def inbound(self) -> int:
        topic = self._settings.topic(INBOUND)
        with self._lock:
            if self._admin is None or self._consumer is None:
                self._admin = KafkaAdminClient(**client_options(self._settings))
                self._consumer = KafkaConsumer(**client_options(self._settings))
            partitions = self._consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            if not tps:
                return 0
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
        parked = self.parked()
        return {"inbound": self.inbound() + parked, "relay": self.relay(), "parked": parked}

    def close(self) -> None:
        with self._lock:
            if self._admin is not None:
                self._admin.close()
            if self._consumer is not None:
                self._consumer.close()
            self._admin = self._consumer = None
