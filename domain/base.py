"""What every PMO event carries, and how publisher ids become store ids."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import AggregateCreated, AggregateEvent, BaseAggregate

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


# Event classes already triggered once through the library's own ``trigger_event``.
_CHECKED: set[type[PmoEvent]] = set()


def trigger(aggregate: BaseAggregate[UUID], event_class: type[PmoEvent], envelope: Envelope,
            **data: Any) -> None:
    """``aggregate.trigger_event(event_class, **data, **envelope.as_kwargs())``, faster.

    The library's method re-checks on every call what cannot change for a class (not
    the base ``Event``, explicit topic registered) and copies its keyword arguments
    twice: a third of an event's cost on the ingest path. The first event of each
    class still goes through it, so a wrong class fails just as loudly. The event is
    the same: a dataclass sets its fields in declared order whatever the call's order.
    """
    if event_class not in _CHECKED:
        aggregate.trigger_event(event_class, **data, **envelope.as_kwargs())
        _CHECKED.add(event_class)
        return
    make: Any = event_class  # a dataclass made by the library's metaclass: mypy sees no fields
    event = make(originator_id=aggregate.id, originator_version=aggregate.version + 1,
                 timestamp=event_class.create_timestamp(), source=envelope.source,
                 event_id=envelope.event_id, actor=envelope.actor, time=envelope.time, **data)
    event.mutate(aggregate)
    aggregate.pending_events.append(event)
