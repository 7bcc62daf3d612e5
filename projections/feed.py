"""What every projection consumes: stored events with their global position.

The embedded runner reads them from the event store's notification log; the
Kafka consumer rebuilds them from ``pmo.events`` messages (value = ``state``,
headers = the rest). Either way the projection sees the same ``RecordedEvent``,
so replay and live processing cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    position: int  # the event store's notification id: global, increasing, may have gaps
    originator_id: UUID
    originator_version: int
    topic: str  # the stored topic, equal to the CloudEvent type (e.g. pmo.project.approved)
    state: bytes  # the stored bytes, exactly as in the store (the audit hash covers them)
    event: Any  # the decoded domain event (domain.base.PmoEvent or a Snapshot-free subclass)

    @property
    def recorded_at(self) -> datetime:
        stamp: datetime = self.event.timestamp
        return stamp


class Decoder(Protocol):
    def __call__(self, originator_id: UUID, originator_version: int, topic: str,
                 state: bytes) -> Any: ...
