"""``pmo consume`` rebuilds a projection blue/green, from the start of ``pmo.events``.

Asked through ``POST /v1/projections/{name}/rebuild`` (the live tracking then holds
``_rebuilding``), the consumer of that projection that owns partition 0 builds the
next version (``projections.bluegreen``) with a consumer of its own, outside the
group: every partition assigned to it, from the beginning (or from the offsets the
next version holds, after a restart). Each partition is read up to the offset the
live version holds for it, never beyond, so when all have reached them both
versions hold exactly the same events and the swap replaces one by the other; the
live consumer goes on from the same offsets. Nothing is published again: the
rebuild reads what ``pmo.events`` keeps (its retention must hold the whole log;
the default topic config keeps it forever).
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Mapping

from kafka import KafkaConsumer, TopicPartition

from consumers.codec import EventDecoder
from consumers.retry import connected
from consumers.topics import EVENTS, client_options
from pmo.settings import Settings
from projections import bluegreen
from projections.base import Projection
from projections.feed import RecordedEvent

log = logging.getLogger(__name__)

HIGH_WATER = "_position"
CATCH_UP_TIMEOUT_S = 60.0  # inside the swap's transaction: give up (and retry) after this
MAX_RECORDS = 5000  # per poll of the rebuild


def tracking_key(tp: TopicPartition) -> str:
    return f"{tp.topic}:{tp.partition}"


class KafkaRebuild:
    def __init__(self, settings: Settings, live: Projection, decoder: EventDecoder,
                 max_records: int | None = None) -> None:
        self.next = bluegreen.NextVersion(live, f"kafka_{live.name}")
        self.next.open(resume=True)
        self._decoder = decoder
        topic = settings.topic(EVENTS)
        self._consumer = connected(lambda: KafkaConsumer(
            **client_options(settings), group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", max_poll_records=max_records or MAX_RECORDS,
            max_partition_fetch_bytes=1024 * 1024), what="the rebuild's reader")
        partitions = self._consumer.partitions_for_topic(topic)
        if not partitions:  # no metadata yet: never take "no partitions" for "caught up"
            self._consumer.close(autocommit=False)
            raise LookupError(f"no partitions known for {topic} yet")
        self._tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        self._consumer.assign(self._tps)
        stored = self.next.projection.tracking()
        for tp in self._tps:
            offset = stored.get(tracking_key(tp))
            if offset is None:
                self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, offset)
        self._high = stored.get(HIGH_WATER, 0)
        log.info("%s: rebuilding beside the live view from %s", live.name, topic)

    def step(self, live: Mapping[str, int], timeout_ms: int = 20) -> bool:
        """One poll toward the live offsets ``live``; True once every partition is there."""
        caps = {tp: live.get(tracking_key(tp), 0) for tp in self._tps}
        behind = [tp for tp in self._tps if self._consumer.position(tp) < caps[tp]]
        if not behind:
            return True
        self._consumer.pause(*[tp for tp in self._tps if tp not in behind])
        self._consumer.resume(*behind)
        polled = self._consumer.poll(timeout_ms=timeout_ms)
        tracking: dict[str, int] = {}
        decoded: list[list[RecordedEvent]] = []
        for tp, messages in polled.items():
            cap = caps[tp]
            kept = [m for m in messages if m.offset < cap]
            if len(kept) < len(messages):  # read no further than the live version has
                self._consumer.seek(tp, cap)
            if kept:
                decoded.append([self._decoder.decode(m.value, m.headers, m.key)
                                for m in kept])
            tracking[tracking_key(tp)] = kept[-1].offset + 1 if kept else cap
        if tracking:
            events = list(heapq.merge(*decoded, key=_position))
            if events:
                self._high = max(self._high, *(e.position for e in events))
            tracking[HIGH_WATER] = self._high
            self.next.projection.process(events, tracking)
            self.next.report(self._high)
        return all(self._consumer.position(tp) >= caps[tp] for tp in self._tps)

    def catch_up(self, _: bluegreen.NextVersion, live: dict[str, int]) -> None:
        deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
        while not self.step(live, 100):
            if time.monotonic() > deadline:
                raise TimeoutError("the rebuild could not reach the live offsets in time")

    def swap(self) -> bool:
        swapped = bluegreen.swap([self.next], self.catch_up)
        log.info("%s: rebuilt from %s and %s", self.next.name,
                 ", ".join(tracking_key(tp) for tp in self._tps),
                 "swapped in" if swapped else "dropped (another rebuild was first)")
        return swapped

    def close(self) -> None:
        self._consumer.close(autocommit=False)


def _position(event: RecordedEvent) -> int:
    return event.position


__all__ = ["KafkaRebuild"]
