"""Writing events as an older, laxer version did: straight into the store, no ingest, no checks.

Tests of the read side use it to store values today's ingest refuses (a budget of
1e27, a capacity of 0, a subject that starts like a spreadsheet formula): reads must
still render whatever the store holds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import BaseAggregate

from domain.base import PmoEvent, trigger
from domain.values import Envelope


class OldWriter:
    """Stores events as an older, laxer version did: no ingest, no command checks."""

    def __init__(self, source: str = "urn:old-version", actor: str = "legacy",
                 id_prefix: str = "old-") -> None:
        self.n = 0
        self.source, self.actor, self.id_prefix = source, actor, id_prefix

    def env(self) -> Envelope:
        self.n += 1
        return Envelope(self.source, f"{self.id_prefix}{self.n}", self.actor, datetime.now(UTC))

    def create(self, cls: Any, event: type[PmoEvent], key: str, **data: Any) -> Any:
        return cls._create(event, id=cls.id_for(key), key=key, **data,
                           **self.env().as_kwargs())

    def then(self, aggregate: BaseAggregate[UUID], event: type[PmoEvent], **data: Any) -> None:
        trigger(aggregate, event, self.env(), **data)
