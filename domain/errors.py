"""Why the PMO refuses something. One root; every rejection carries its reason.

The reason text is what a publisher reads: in the 409 problem and on
``pmo.inbound.rejected``.
"""

from __future__ import annotations

from decimal import Decimal


class DomainRejection(Exception):
    """The PMO's rules refuse this command; nothing was recorded."""

    code = "rejected"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransitionNotAllowed(DomainRejection):
    """The project's lifecycle does not allow this action in its current state."""

    code = "transition-not-allowed"

    def __init__(self, from_state: str, action: str) -> None:
        super().__init__(f"event '{action}' is not allowed for a project in state '{from_state}'")
        self.from_state = from_state
        self.action = action


class OverBudgetEnvelope(DomainRejection):
    """An approval or budget change would exceed what is left of the portfolio envelope."""

    code = "over-budget-envelope"

    def __init__(self, requested: Decimal, remaining: Decimal, currency: str) -> None:
        super().__init__(
            f"budget {requested} {currency} exceeds the {remaining} {currency} "
            "left in the portfolio's budget envelope"
        )
        self.requested = requested
        self.remaining = remaining


class OverCapacity(DomainRejection):
    """The manager already holds as many non-terminal projects as their capacity."""

    code = "over-capacity"

    def __init__(self, manager_id: str, held: int, capacity: int) -> None:
        super().__init__(
            f"manager '{manager_id}' already holds {held} non-terminal projects "
            f"(capacity {capacity})"
        )
        self.manager_id = manager_id
        self.capacity = capacity


class ManagerNotInPool(DomainRejection):
    """A directive PMO assigns only managers registered in its pool and still in it."""

    code = "manager-not-in-pool"


class ManagerRequired(DomainRejection):
    """A directive PMO starts a project only once a manager is assigned."""

    code = "manager-required"


class UnknownAggregate(DomainRejection):
    """The command names a portfolio, program, project, manager or objective that does not exist."""

    code = "unknown-aggregate"

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"unknown {kind} '{key}'")
        self.kind = kind
        self.key = key


class UnknownManager(UnknownAggregate, ManagerNotInPool):
    """A manager never registered (or not yet): outside the pool, and unknown, so an event
    naming it waits for the registration in Kafka mode (consumers.parking)."""

    def __init__(self, key: str) -> None:
        super().__init__("manager", key)


class AlreadyExists(DomainRejection):
    """Something with this id was already created; ids are never reused."""

    code = "already-exists"

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} '{key}' already exists")
        self.kind = kind
        self.key = key


class CurrencyMismatch(DomainRejection):
    """An amount is not in the portfolio's currency."""

    code = "currency-mismatch"

    def __init__(self, given: str, expected: str) -> None:
        super().__init__(f"amount in {given}, but the portfolio keeps its books in {expected}")
        self.given = given
        self.expected = expected


class InvalidValue(DomainRejection):
    """A value breaks a domain rule (amount, range, date order, membership)."""

    code = "invalid-value"
