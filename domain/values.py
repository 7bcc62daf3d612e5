"""Small immutable values of the PMO domain, and how they are stored.

Enums are plain ``Enum`` (not ``str`` mixins): the JSON transcoder would store a
``str`` mixin as a bare string and give back a ``str``, not the member.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from eventsourcing.persistence import Transcoding


class PmoType(Enum):
    """How hard a PMO governs its portfolio."""

    SUPPORTIVE = "supportive"
    CONTROLLING = "controlling"
    DIRECTIVE = "directive"

    @property
    def enforces_envelope(self) -> bool:
        return self is not PmoType.SUPPORTIVE

    @property
    def holds_managers_accountable(self) -> bool:
        return self is PmoType.DIRECTIVE


class ProjectState(Enum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    ACTIVE = "active"
    ON_HOLD = "on_hold"
    COMPLETED = "completed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def holds_budget(self) -> bool:
        """Counted against the envelope: approved, active, on hold or completed."""
        return self in BUDGET_HOLDING_STATES

    @property
    def is_live(self) -> bool:
        return self in LIVE_STATES


TERMINAL_STATES = frozenset({ProjectState.REJECTED, ProjectState.COMPLETED, ProjectState.CANCELLED})
LIVE_STATES = frozenset({ProjectState.APPROVED, ProjectState.ACTIVE, ProjectState.ON_HOLD})
BUDGET_HOLDING_STATES = LIVE_STATES | {ProjectState.COMPLETED}


class Colour(Enum):
    """RAG status of a status report dimension."""

    GREEN = "green"
    AMBER = "amber"
    RED = "red"


@dataclass(frozen=True, slots=True)
class Envelope:
    """Who said what happened, and when: kept on every stored event.

    ``time`` is the publisher's instant; the store's recording instant is the
    event's own ``timestamp``.
    """

    source: str
    event_id: str
    actor: str | None
    time: datetime

    def as_kwargs(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "event_id": self.event_id,
            "actor": self.actor,
            "time": self.time,
        }


def money(value: Decimal | str | int) -> Decimal:
    """A finite decimal amount; never a float."""
    if isinstance(value, float):  # pragma: no cover - guarded by types, kept for callers
        raise TypeError("money must not be a float")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not a decimal amount: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return amount


def utc(moment: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is refused, never guessed."""
    if moment.utcoffset() is None:
        raise ValueError(f"time without a UTC offset: {moment.isoformat()}")
    return moment.astimezone(UTC)


class EnumAsStr(Transcoding):
    """Stores one ``str`` Enum by value so it comes back as the Enum, not a plain str."""

    def __init__(self, enum_type: type[Enum]) -> None:
        self.type = enum_type
        self.name = enum_type.__name__

    def encode(self, obj: Enum) -> str:
        return str(obj.value)

    def decode(self, data: str) -> Enum:
        member: Enum = self.type(data)
        return member


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


def transcodings() -> list[Transcoding]:
    """Every custom type held in events or aggregate state (snapshots included)."""
    return [EnumAsStr(PmoType), EnumAsStr(ProjectState), EnumAsStr(Colour), DateAsISO()]
