"""The audit chain recomputed from the event store alone, streamed a page at a time.

Nothing here reads the trail in the projection store: every digest is computed
from the event store's own rows (``stored_events``, ``event_times``) under the
definition in ``projections.audit``. ``verify`` compares it with the trail;
anchors and snapshots compare it with a head hash kept elsewhere, so a trail
recomputed by someone with disk access proves nothing against them.

Receipts: every event stores in its body the ``source`` and ``id`` of the
inbound message that caused it (the digest covers them); one command can cause
several events, stored one after the other, and the ``inbound_receipts`` table
holds one row per message, at the position of one of them. A group of adjacent
events naming one message must find that message's row pointing into the group:
an edited, deleted or moved receipt breaks the group, reported at its first
position (at or before the receipt's own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple, Protocol

import orjson

from domain.application import Key, PmoApplication
from projections.audit import GENESIS, digest, link
from projections.feed import plain_state

PAGE = 5000
Progress = Callable[[int, int], None]  # (position reached, last position)


class StoredRow(Protocol):
    """A row of ``log_with_times`` (``storage.recorders.LoggedEvent``)."""

    position: int
    originator_id: str
    originator_version: int
    topic: str
    state: bytes
    recorded_us: int | None


class StoreLog(Protocol):
    def log_with_times(self, after: int, limit: int) -> list[Any]: ...

    def positions_of(self, keys: Iterable[Key]) -> dict[Key, int]: ...

    def max_notification_id(self) -> int | None: ...


class Link(NamedTuple):
    position: int
    store_id: str
    version: int
    topic: str
    recorded_us: int | None
    source: str | None
    event_id: str | None
    digest: str
    hash: str


class Break(NamedTuple):
    position: int
    what: str  # body, time, receipt, missing, inserted, order, chain, unbuilt
    detail: str


class StoreChain:
    """Iterate for the chain's links in position order, up to ``upto`` (default: all).

    ``receipt_break`` is set as soon as a group of events fails its receipt check
    (when the group ends, so possibly a few links after its first position).
    """

    def __init__(self, app: PmoApplication, upto: int | None = None,
                 progress: Progress | None = None, page: int = PAGE) -> None:
        self.app = app
        self.log: StoreLog = app.recorder  # type: ignore[assignment]
        self.upto = upto if upto is not None else (self.log.max_notification_id() or 0)
        self.progress = progress
        self.page = page
        self.receipt_break: Break | None = None
        self.head: tuple[int, str] = (0, GENESIS)
        self._group: Key | None = None
        self._group_positions: list[int] = []
        self._expected: int | None = None

    def __iter__(self) -> Iterator[Link]:
        prev = GENESIS
        after = 0
        mapper = self.app.mapper
        while after < self.upto:
            rows = self.log.log_with_times(after, min(self.page, self.upto - after))
            rows = [r for r in rows if r.position <= self.upto]
            if not rows:
                break
            links = []
            for r in rows:
                try:
                    payload = orjson.loads(plain_state(mapper, r.state))
                except (orjson.JSONDecodeError, ValueError):
                    payload = None  # damaged bytes: the digest differs, no receipt is claimed
                source = payload.get("source") if type(payload) is dict else None
                event_id = payload.get("event_id") if type(payload) is dict else None
                d = digest(r.position, r.originator_id, r.originator_version, r.topic,
                           r.recorded_us, source, event_id, r.state)
                prev = link(prev, d)
                links.append(Link(r.position, r.originator_id, r.originator_version, r.topic,
                                  r.recorded_us, source, event_id, d, prev))
            receipts = self.log.positions_of(
                {(lk.source, lk.event_id) for lk in links
                 if isinstance(lk.source, str) and isinstance(lk.event_id, str)})
            for lk in links:
                self._receipt(lk, receipts)
                self.head = (lk.position, lk.hash)
                yield lk
            after = rows[-1].position
            if self.progress is not None:
                self.progress(after, self.upto)
        self._close_group(final=True)

    def _receipt(self, lk: Link, receipts: dict[Key, int]) -> None:
        key = ((lk.source, lk.event_id)
               if isinstance(lk.source, str) and isinstance(lk.event_id, str) else None)
        if key != self._group:
            self._close_group(final=False)
            self._group = key
            self._group_positions = []
            self._expected = receipts.get(key) if key is not None else None
        elif self._expected is None and key is not None:
            self._expected = receipts.get(key)  # the group goes on in a later page
        self._group_positions.append(lk.position)

    def _close_group(self, *, final: bool) -> None:
        key, positions, expected = self._group, self._group_positions, self._expected
        if key is None or not positions or self.receipt_break is not None:
            return
        # A group cut by ``upto`` may have its receipt just after the cut.
        last = self.upto if final and positions[-1] == self.upto else positions[-1]
        if final and positions[-1] == self.upto and expected is not None:
            last = max(last, expected)
        if expected is None or not positions[0] <= expected <= last:
            where = "none" if expected is None else f"position {expected}"
            self.receipt_break = Break(
                positions[0], "receipt",
                f"message ({key[0]}, {key[1]}) of positions {positions[0]}-{positions[-1]}: "
                f"its receipt points to {where}")
