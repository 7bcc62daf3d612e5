"""``pmo consume rejections``: dead-letter topics -> the log of ``GET /v1/rejections``.

Reads every partition of ``pmo.inbound.dlq`` and ``pmo.inbound.rejected`` and
records each dead letter as the ``Refusal`` it was (reason, original bytes and
headers, provenance) in the projection store, with the consumed offsets in the same
transaction; at start it resumes from those offsets, as projection consumers do,
so each dead letter is logged once. (A message that ``pmo ingest``
dead-lettered twice, after a crash, is two dead letters, and logged twice.)
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError, KafkaTimeoutError

from consumers.inbound import read
from consumers.projector import SeekToStored, tracking_key
from consumers.retry import connected, retrying
from consumers.topics import DLQ, REJECTED, client_options
from ingest.service import Refusal
from pmo.settings import Settings

OURS = "pmo_"  # headers the dead-letter producer added
RECHECK_S = 30.0  # how often the reader looks for partitions added to its topics


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


class TrackedRefusalLog(Protocol):
    def record_refusals(self, refusals: Sequence[Refusal],
                        tracking: Mapping[str, int] | None = None) -> None: ...

    def tracking(self) -> dict[str, int]: ...


class RejectionConsumer:
    name = "rejections"

    def __init__(self, settings: Settings, log: TrackedRefusalLog,
                 recheck_s: float = RECHECK_S) -> None:
        self._settings = settings
        self._log = log
        # No consumer group: the log's own offsets are the truth, and one reader of
        # these low-volume topics is enough. It takes every partition itself, so no
        # rebalance ever interrupts it.
        self._consumer = connected(lambda: KafkaConsumer(
            **client_options(settings), enable_auto_commit=False,
            auto_offset_reset="earliest", max_poll_records=1000,
            # Fresh enough metadata to see a partition added to its topics at each check.
            metadata_max_age_ms=max(1000, int(recheck_s * 1000))),
            what="the refusals' reader")
        self._recheck_s = recheck_s
        self._topics = [settings.topic(DLQ), settings.topic(REJECTED)]
        partitions = retrying(lambda: _partitions(self._consumer, self._topics),
                              what="reading topic metadata")
        self._consumer.assign(partitions)
        self._seek = SeekToStored(self._consumer, log.tracking, self.name)
        self._seek.on_partitions_assigned(partitions)
        self._assigned = set(partitions)
        self._checked = time.monotonic()
        self.recorded = 0

    def step(self, timeout_ms: int = 100) -> int:
        if time.monotonic() - self._checked >= self._recheck_s:
            self._take_new_partitions()
        polled = self._consumer.poll(timeout_ms=timeout_ms)
        refusals = [refusal_of(m, self._settings) for batch in polled.values() for m in batch]
        if not refusals:
            return 0
        self._log.record_refusals(refusals, {tracking_key(tp): batch[-1].offset + 1
                                             for tp, batch in polled.items()})
        self.recorded += len(refusals)
        return len(refusals)

    def _take_new_partitions(self) -> None:
        """Partitions added to the dead-letter topics since: read too, from their start.
        Assigned once at start, the reader never read a partition an operator added, and
        the dead letters keyed to it never reached GET /v1/rejections."""
        self._checked = time.monotonic()
        try:
            found = set(_partitions(self._consumer, self._topics))
        except KafkaError:  # metadata not to be had now: the next check tries again
            return
        new = found - self._assigned
        if new:
            self._assigned |= new
            self._consumer.assign(sorted(self._assigned))
            self._seek.on_partitions_assigned(sorted(self._assigned))

    def close(self) -> None:
        self._consumer.close(autocommit=False)


def _partitions(consumer: KafkaConsumer, topics: list[str]) -> list[TopicPartition]:
    found = [TopicPartition(t, p) for t in topics
             for p in consumer.partitions_for_topic(t) or ()]
    if {tp.topic for tp in found} != set(topics):
        raise KafkaTimeoutError(f"no metadata yet for some of {topics}")
    return found
