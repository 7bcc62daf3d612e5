"""What operators do to the service itself, kept as events in the event store.

Why events and not a log table: the audit trail is the event store's hash chain, so an
action stored here is covered by ``GET /v1/audit/verify`` like every PMO fact, and is
listed by ``GET /v1/audit`` (filter ``type=pmo.ledger.quarantine_retried``, or
``aggregate=quarantine/<projection>/<aggregate>``) without a second trail to keep.

Each action is an aggregate of one event (its id from the action's own unique id):
actions never conflict with each other nor wait on one another, and a retry of a
request with the same action id cannot be stored twice. ``key`` names what was acted
on, ``quarantine/<projection>/<aggregate>``, so all actions on one quarantined
aggregate share the audit trail's ``aggregate_id``. The topics start with
``pmo.ledger.``: the view projections read only their own prefixes
(``pmo.project.``...), the audit trail reads every ``pmo.`` topic, and ingest accepts
no such CloudEvent type, so no publisher can forge one.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import BaseAggregate

from domain.base import PmoCreated, PmoEvent, store_id
from domain.values import Envelope


class Operation(BaseAggregate[UUID]):
    TOPIC = "pmo.ledger"

    key: str
    projection: str
    aggregate: str

    def __init__(self) -> None:
        """State is set by the created event's ``apply``."""

    @staticmethod
    def id_for(key: str) -> UUID:
        return store_id("operation", key)

    @staticmethod
    def quarantine_key(projection: str, aggregate: str) -> str:
        return f"quarantine/{projection}/{aggregate}"

    class Event(PmoEvent):
        pass

    class QuarantineRetried(Event, PmoCreated):
        """An operator re-applied a quarantined aggregate's held events."""

        TOPIC = "pmo.ledger.quarantine_retried"
        projection: str
        aggregate: str
        store_id: str
        outcome: str  # "released" or "quarantined" (failed again)
        error: str | None

        def apply(self, op: Operation) -> None:
            op.key, op.projection, op.aggregate = self.key, self.projection, self.aggregate

    class QuarantineEvicted(Event, PmoCreated):
        """An operator dropped a quarantined aggregate's view rows."""

        TOPIC = "pmo.ledger.quarantine_evicted"
        projection: str
        aggregate: str
        store_id: str

        def apply(self, op: Operation) -> None:
            op.key, op.projection, op.aggregate = self.key, self.projection, self.aggregate

    @classmethod
    def quarantine_retried(cls, *, projection: str, aggregate: str, store_id: str,
                           outcome: str, error: str | None, envelope: Envelope) -> Operation:
        return cls._create(cls.QuarantineRetried, id=cls.id_for(envelope.event_id),
                           key=cls.quarantine_key(projection, aggregate), projection=projection,
                           aggregate=aggregate, store_id=store_id, outcome=outcome, error=error,
                           **envelope.as_kwargs())

    @classmethod
    def quarantine_evicted(cls, *, projection: str, aggregate: str, store_id: str,
                           envelope: Envelope) -> Operation:
        return cls._create(cls.QuarantineEvicted, id=cls.id_for(envelope.event_id),
                           key=cls.quarantine_key(projection, aggregate), projection=projection,
                           aggregate=aggregate, store_id=store_id, **envelope.as_kwargs())
