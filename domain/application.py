"""The PMO application: records commands as events, many per transaction, exactly once.

Delivery semantics: every inbound message is identified by its CloudEvent
``source`` and ``id``. Its receipt is written by the event store in the same
transaction as the events it caused, under a unique key, so a message can never
be stored twice, even across crashes and concurrent writers; a repeat answers
``duplicate`` with the position of the first delivery.

Aggregates are cached between batches. The cache may be stale when another
process writes the same store; a stale write fails on the aggregate's version
and is retried with fresh aggregates, and a refusal is re-checked once against
fresh aggregates before it is reported.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import BaseAggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Recording

from domain.commands import Command
from domain.decisions import decide
from domain.errors import DomainRejection
from domain.manager import Manager
from domain.portfolio import Portfolio
from domain.program import Program
from domain.project import Project
from domain.values import Envelope, transcodings

A = TypeVar("A", Portfolio, Program, Project, Manager)
Key = tuple[str, str]  # (source, id) of an inbound message

MAX_CONFLICT_RETRIES = 8


@dataclass(frozen=True, slots=True)
class Receipt:
    """An inbound message and the stored event that answers it."""

    source: str
    event_id: str
    originator_id: UUID
    originator_version: int


class PmoEventLike(Protocol):
    timestamp: datetime


class ReceiptLedger(Protocol):
    """What the event store knows about inbound messages and recording times."""

    def positions_of(self, keys: Iterable[Key]) -> dict[Key, int]: ...

    def version_at(self, originator_id: UUID, instant: datetime) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Literal["accepted", "duplicate", "rejected"]
    position: int | None = None
    reason: str | None = None
    code: str | None = None


class PmoApplication(Application[UUID]):
    name = "pmo_ledger"
    snapshotting_intervals = {Project: 100, Portfolio: 200, Manager: 100, Program: 100}

    def __init__(self, env: Mapping[str, str] | None = None, cache_size: int = 20_000) -> None:
        super().__init__(env)
        self._cache: OrderedDict[UUID, BaseAggregate[UUID]] = OrderedDict()
        self._cache_size = cache_size

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        for transcoding in transcodings():
            transcoder.register(transcoding)

    @property
    def ledger(self) -> ReceiptLedger:
        return cast(ReceiptLedger, self.recorder)

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        # The store indexes each event's recording time for as-of reads.
        processing_event.saved_kwargs["timestamps"] = [
            cast(PmoEventLike, e).timestamp for e in processing_event.events]
        return super()._record(processing_event)

    # -- writing ----------------------------------------------------------------

    def record(self, items: Sequence[tuple[Envelope, Command]]) -> list[Outcome]:
        """Decide and store a batch of commands in one transaction; one outcome each."""
        outcomes: list[Outcome | None] = [None] * len(items)
        keys = [(env.source, env.event_id) for env, _ in items]
        self._mark_duplicates(keys, self.ledger.positions_of(set(keys)), outcomes)
        for _attempt in range(MAX_CONFLICT_RETRIES):
            pending = [i for i, o in enumerate(outcomes) if o is None]
            if not pending:
                break
            uow = UnitOfWork(self)
            receipts: dict[int, Receipt] = {}
            first_of: dict[Key, int] = {}
            for i in pending:
                env, command = items[i]
                if keys[i] in first_of:
                    continue  # a repeat inside this batch answers as its first
                first_of[keys[i]] = i
                result = self._decide(uow, command, env)
                if isinstance(result, Outcome):
                    outcomes[i] = result
                else:
                    receipts[i] = result
            try:
                recordings = self.save(*uow.changed(), receipts=list(receipts.values()))
            except IntegrityError:
                self._evict(uow.loaded_ids())
                known = self.ledger.positions_of({keys[i] for i in receipts})
                self._mark_duplicates(keys, known, outcomes)
                continue  # duplicates marked, or a version conflict: decide again, fresh
            except BaseException:
                self._evict(uow.loaded_ids())  # cached objects hold unsaved events
                raise
            self._remember(uow)
            position = {(r.domain_event.originator_id, r.domain_event.originator_version):
                        r.notification.id for r in recordings}
            for i, receipt in receipts.items():
                outcomes[i] = Outcome(
                    "accepted", position[(receipt.originator_id, receipt.originator_version)])
            for i in pending:
                if outcomes[i] is None:
                    first = outcomes[first_of[keys[i]]]
                    assert first is not None
                    outcomes[i] = (Outcome("duplicate", first.position)
                                   if first.status == "accepted" else first)
            break
        else:
            raise RuntimeError(f"gave up after {MAX_CONFLICT_RETRIES} version conflicts")
        return [o for o in outcomes if o is not None]

    def _decide(self, uow: UnitOfWork, command: Command, env: Envelope) -> Receipt | Outcome:
        for fresh in (False, True):
            uow.begin_command()
            try:
                subject = decide(command, env, uow)
            except DomainRejection as rejection:
                # A refusal read from cache is checked once more against the store.
                if not fresh and self._evict(uow.clean_cached_reads()):
                    continue
                return Outcome("rejected", reason=rejection.reason, code=rejection.code)
            return Receipt(env.source, env.event_id, subject.id, subject.version)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _mark_duplicates(keys: Sequence[Key], known: Mapping[Key, int],
                         outcomes: list[Outcome | None]) -> None:
        for i, key in enumerate(keys):
            if outcomes[i] is None and key in known:
                outcomes[i] = Outcome("duplicate", known[key])

    # -- reading ----------------------------------------------------------------

    def get_by_key(self, cls: type[A], key: str, *, as_of: datetime | None = None) -> A | None:
        """The aggregate the publisher calls ``key``, now or as recorded at ``as_of``."""
        aggregate_id = cls.id_for(key)
        version: int | None = None
        if as_of is not None:
            version = self.ledger.version_at(aggregate_id, as_of)
            if version is None:
                return None
        try:
            return cast(A, self.repository.get(aggregate_id, version=version))
        except AggregateNotFoundError:
            return None

    # -- the aggregate cache ----------------------------------------------------

    def cached(self, aggregate_id: UUID) -> BaseAggregate[UUID] | None:
        aggregate = self._cache.get(aggregate_id)
        if aggregate is not None:
            self._cache.move_to_end(aggregate_id)
        return aggregate

    def _remember(self, uow: UnitOfWork) -> None:
        for aggregate in uow.loaded():
            self._cache[aggregate.id] = aggregate
            self._cache.move_to_end(aggregate.id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _evict(self, ids: Iterable[UUID]) -> bool:
        evicted = False
        for aggregate_id in ids:
            evicted = self._cache.pop(aggregate_id, None) is not None or evicted
        return evicted


class UnitOfWork:
    """The aggregates one batch reads and changes; saved together or not at all."""

    def __init__(self, app: PmoApplication) -> None:
        self._app = app
        self._loaded: dict[UUID, BaseAggregate[UUID] | None] = {}
        self._cached_reads: set[UUID] = set()

    def get(self, cls: type[A], key: str) -> A | None:
        aggregate_id = cls.id_for(key)
        if aggregate_id in self._loaded:
            found = self._loaded[aggregate_id]
        else:
            found = self._app.cached(aggregate_id)
            if found is not None:
                self._cached_reads.add(aggregate_id)
            else:
                try:
                    found = self._app.repository.get(aggregate_id)
                except AggregateNotFoundError:
                    found = None
            self._loaded[aggregate_id] = found
        if found is not None and not isinstance(found, cls):
            return None  # the id belongs to another kind; uuid5 makes this practically never
        return found

    def add(self, aggregate: BaseAggregate[Any]) -> None:
        self._loaded[aggregate.id] = aggregate

    def begin_command(self) -> None:
        self._cached_reads = set()

    def clean_cached_reads(self) -> set[UUID]:
        """Cache hits of the current command without pending events: safe to reload."""
        clean = set()
        for aggregate_id in self._cached_reads:
            aggregate = self._loaded.get(aggregate_id)
            if aggregate is None or not aggregate.pending_events:
                clean.add(aggregate_id)
                self._loaded.pop(aggregate_id, None)
        return clean

    def changed(self) -> list[BaseAggregate[UUID]]:
        return [a for a in self._loaded.values() if a is not None and a.pending_events]

    def loaded(self) -> list[BaseAggregate[UUID]]:
        return [a for a in self._loaded.values() if a is not None]

    def loaded_ids(self) -> list[UUID]:
        return list(self._loaded)
