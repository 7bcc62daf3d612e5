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

import math
import random
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import BaseAggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Recording, Transcoder
from eventsourcing.utils import register_topic

from domain.catalogue import CREATES, decide
from domain.commands import Command
from domain.errors import DomainRejection
from domain.manager import Manager
from domain.portfolio import Portfolio
from domain.program import Program
from domain.project import Project
from domain.values import Envelope, transcodings

A = TypeVar("A", Portfolio, Program, Project, Manager)
Key = tuple[str, str]  # (source, id) of an inbound message

MAX_CONFLICT_RETRIES = 20
_UNSEEN: Any = object()  # not yet looked up by this unit of work (None: looked up, absent)

# eventsourcing registers the explicit topics of nested events, not of nested
# snapshot classes: without this a new process cannot load a snapshotted aggregate.
for _aggregate in (Portfolio, Program, Project, Manager):
    register_topic(_aggregate.Snapshot.TOPIC, _aggregate.Snapshot)


@dataclass(frozen=True, slots=True)
class Receipt:
    """An inbound message and the stored event that answers it."""

    source: str
    event_id: str
    originator_id: UUID
    originator_version: int
    # Where that event is in the batch's events as saved (decision order), so the
    # store and the application find its position by index rather than by hashing
    # (originator_id, originator_version) keys; None: find it by those keys.
    index: int | None = None


class PmoEventLike(Protocol):
    timestamp: datetime


class ReceiptLedger(Protocol):
    """What the event store knows about inbound messages, aggregates and recording times."""

    def positions_of(self, keys: Iterable[Key]) -> dict[Key, int]: ...

    def existing(self, originator_ids: Iterable[UUID]) -> set[UUID]: ...

    def version_at(self, originator_id: UUID, instant: datetime) -> int | None: ...

    def positions_by_version(self, originator_id: UUID) -> dict[int, int]: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Literal["accepted", "duplicate", "rejected"]
    position: int | None = None
    reason: str | None = None
    code: str | None = None


class PmoApplication(Application[UUID]):
    name = "pmo_ledger"
    snapshotting_intervals = {Project: 100, Portfolio: 200, Manager: 100, Program: 100}

    def __init__(self, env: Mapping[str, str] | None = None, cache_size: int = 20_000,
                 transcoder: JSONTranscoder | None = None) -> None:
        self._given_transcoder = transcoder  # before super(): it constructs the mapper
        super().__init__(env)
        self._cache: OrderedDict[UUID, BaseAggregate[UUID]] = OrderedDict()
        self._cache_size = cache_size

    def construct_transcoder(self) -> Transcoder:
        if self._given_transcoder is None:
            return super().construct_transcoder()
        self.register_transcodings(self._given_transcoder)
        return self._given_transcoder

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
        for attempt in range(MAX_CONFLICT_RETRIES):
            if attempt:
                # Jittered backoff: two writers that keep colliding must stop colliding.
                time.sleep(random.uniform(0, min(0.05, 0.001 * 2 ** attempt)))
            pending = [i for i, o in enumerate(outcomes) if o is None]
            if not pending:
                break
            uow = UnitOfWork(self, self._absent_subjects([items[i][1] for i in pending]))
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
                recordings = self._save(uow, receipts=list(receipts.values()))
            except IntegrityError:
                # A duplicate delivery or a version conflict: nothing was stored. Every
                # decision of this attempt (refusals too) rested on state that was never
                # committed, so all are made again on fresh aggregates.
                self._evict(uow.loaded_ids())
                for i in pending:
                    outcomes[i] = None
                known = self.ledger.positions_of({keys[i] for i in receipts})
                self._mark_duplicates(keys, known, outcomes)
                continue
            except BaseException:
                self._evict(uow.loaded_ids())  # cached objects hold unsaved events
                raise
            self._remember(uow)
            # Recordings are in the order of the saved events, which receipts index.
            for i, receipt in receipts.items():
                assert receipt.index is not None
                outcomes[i] = Outcome("accepted", recordings[receipt.index].notification.id)
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
                uow.end_command()
            except DomainRejection as rejection:
                # A refusal read from cache is checked once more against the store.
                if not fresh and self._evict(uow.clean_cached_reads()):
                    continue
                return Outcome("rejected", reason=rejection.reason, code=rejection.code)
            return Receipt(env.source, env.event_id, subject.id, subject.version,
                           uow.index_of_newest(subject))
        raise AssertionError("unreachable")  # pragma: no cover

    def _save(self, uow: UnitOfWork, **kwargs: Any) -> list[Recording[UUID]]:
        """``Application.save`` in decision order, without its per-object Protocol checks.

        Events are stored in the order they were decided across aggregates (a
        portfolio opens before its first project is proposed), not grouped by aggregate.
        """
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        processing_event.events.extend(uow.decided_events())
        for aggregate in uow.changed():
            aggregate.collect_events()
            processing_event.aggregates[aggregate.id] = aggregate
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        return recordings

    def _absent_subjects(self, commands: Iterable[Command]) -> set[UUID]:
        """Subjects of creating commands that the store does not hold: no load needed."""
        ids = {CREATES[type(cmd)].id_for(cmd.subject)  # type: ignore[attr-defined]
               for cmd in commands if type(cmd) in CREATES}
        ids = {i for i in ids if i not in self._cache}
        return ids - self.ledger.existing(ids) if ids else set()

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        # The library reloads each aggregate to snapshot it; ours are in memory, current.
        if self.snapshots is None:
            return
        due: set[UUID] = set()
        # A multiple of any interval is a multiple of their gcd: most events are passed
        # over by one modulo, before hashing their aggregate's UUID to find its interval.
        step = math.gcd(*self.snapshotting_intervals.values()) or 1
        for event in processing_event.events:
            if event.originator_version % step:
                continue
            aggregate = processing_event.aggregates.get(event.originator_id)
            interval = self.snapshotting_intervals.get(type(aggregate)) if aggregate else None
            if interval and event.originator_version % interval == 0:
                due.add(event.originator_id)
        snapshots = []
        for aggregate_id in due:
            aggregate = processing_event.aggregates[aggregate_id]
            snapshots.append(type(aggregate).Snapshot.take(aggregate))  # type: ignore[attr-defined]
        if snapshots:
            self.snapshots.put(snapshots)

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

    def __init__(self, app: PmoApplication, absent: set[UUID] | None = None) -> None:
        self._app = app
        self._loaded: dict[UUID, BaseAggregate[UUID] | None] = dict.fromkeys(absent or ())
        self._cached_reads: set[UUID] = set()
        # Aggregates the current command read, in order, repeats included (harmless:
        # ``end_command`` takes each one's new events once).
        self._touched: list[BaseAggregate[UUID]] = []
        self._decided: list[Any] = []  # every new event, in the order decisions made them
        # id(aggregate) -> its pending events already in _decided. By object identity:
        # an int hashes in C, a UUID in Python; the objects live as long as this unit.
        self._counted: dict[int, int] = {}
        self._newest: dict[int, int] = {}  # id(aggregate) -> index of its newest event in _decided

    def get(self, cls: type[A], key: str) -> A | None:
        aggregate_id = cls.id_for(key)
        # One lookup, not ``in`` then ``[]``: a UUID's hash is computed in Python, and
        # this runs a few times per command.
        found = self._loaded.get(aggregate_id, _UNSEEN)
        if found is _UNSEEN:
            found = self._app.cached(aggregate_id)
            if found is not None:
                self._cached_reads.add(aggregate_id)
            else:
                try:
                    found = self._app.repository.get(aggregate_id)
                except AggregateNotFoundError:
                    found = None
            self._loaded[aggregate_id] = found
        if found is not None:
            self._touched.append(found)
        if found is not None and not isinstance(found, cls):
            return None  # the id belongs to another kind; uuid5 makes this practically never
        return found

    def add(self, aggregate: BaseAggregate[Any]) -> None:
        self._loaded[aggregate.id] = aggregate
        self._touched.append(aggregate)

    def begin_command(self) -> None:
        if self._cached_reads:
            self._cached_reads = set()
        self._touched = []

    def end_command(self) -> None:
        """Note the events this command triggered, in the order it triggered them."""
        # Within one command, events of different aggregates keep the decision's
        # order of aggregates: decisions trigger the subject first.
        counted = self._counted
        for aggregate in self._touched:
            pending = aggregate.pending_events
            before = counted.get(id(aggregate), 0)
            if len(pending) > before:
                self._decided.extend(pending[before:])
                counted[id(aggregate)] = len(pending)
                self._newest[id(aggregate)] = len(self._decided) - 1

    def index_of_newest(self, aggregate: BaseAggregate[UUID]) -> int:
        """Where ``aggregate``'s newest event is in ``decided_events()``."""
        return self._newest[id(aggregate)]

    def decided_events(self) -> list[Any]:
        return self._decided

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
