"""What every PMO event carries, and how publisher ids become store ids."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from uuid import UUID, uuid5

from eventsourcing.domain import AggregateCreated, AggregateEvent

from domain.values import Envelope

# Fixed forever: changing it would orphan every stored aggregate.
ID_NAMESPACE = UUID("6f1c2a8e-4b5d-5e0f-9a3b-2c7d8e9f0a1b")


@lru_cache(maxsize=200_000)
def store_id(kind: str, key: str) -> UUID:
    """The store's id for the publisher's id ``key`` of an aggregate of ``kind``.

    Deterministic, so a repeated create collides instead of forking, and opaque:
    no publisher string (which may name a person) is readable in the store's ids.
    """
    return uuid5(ID_NAMESPACE, f"{kind}:{key}")


class PmoEvent(AggregateEvent):
    """A PMO fact, with the envelope of the inbound message that caused it."""

    source: str
    event_id: str
    actor: str | None
    time: datetime

    @property
    def envelope(self) -> Envelope:
        return Envelope(self.source, self.event_id, self.actor, self.time)


class PmoCreated(PmoEvent, AggregateCreated):
    """The first fact of an aggregate; ``key`` is the publisher's id for it."""

    key: str
