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
position (at or before the receipt's own). The service's own actions
(``OWN_TOPICS``) have no inbound message, so no receipt is expected of them (one
that has a receipt must still have it inside the group).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple, Protocol

import orjson

from domain.application import Key, PmoApplication
from projections.audit import GENESIS, digest, link
from projections.feed import plain_state

PAGE = 5000
# Topics of the service's own actions (quarantine's retries and evictions, recorded by an
# admin's request, not from an inbound message): stored without a receipt. Inbound
# CloudEvent types never map to these topics.
OWN_TOPICS = ("pmo.ledger.",)
Progress = Callable[[int, int], None]  # (position reached, last position)


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


# A row of ``StoreChain.pages``: the fields of ``Link``, as a plain tuple (cheaper).
Row = tuple[int, str, int, str, int | None, Any, Any, str, str]


class StoreChain:
    """Iterate for the chain's links in position order, up to ``upto`` (default: all);
    ``pages()`` gives them as lists of plain tuples, a page at a time (what ``verify`` reads).

    ``receipt_break`` is set as soon as a group of events fails its receipt check
    (when the group ends: possibly a page after its first position).
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
        # The group of adjacent events naming one message, still open: key, first, last.
        self._group: tuple[Any, Any] = (None, None)
        self._first = self._last = 0
        self._own = False  # the open group is the service's own action (OWN_TOPICS)

    def __iter__(self) -> Iterator[Link]:
        for rows in self.pages():
            for row in rows:
                yield Link._make(row)

    def pages(self) -> Iterator[list[Row]]:
        prev = GENESIS
        after = 0
        mapper = self.app.mapper
        loads = orjson.loads
        while after < self.upto:
            logged = self.log.log_with_times(after, min(self.page, self.upto - after))
            logged = [r for r in logged if r[0] <= self.upto]
            if not logged:
                break
            rows: list[Row] = []
            for position, oid, version, topic, state, us in logged:
                try:
                    payload = loads(plain_state(mapper, state))
                except (orjson.JSONDecodeError, ValueError):
                    payload = None  # damaged bytes: the digest differs, no receipt is claimed
                if type(payload) is dict:
                    source, event_id = payload.get("source"), payload.get("event_id")
                else:
                    source = event_id = None
                d = digest(position, oid, version, topic, us, source, event_id, state)
                prev = link(prev, d)
                rows.append((position, oid, version, topic, us, source, event_id, d, prev))
            self._check_receipts(rows)
            self.head = (rows[-1][0], rows[-1][8])
            yield rows
            after = rows[-1][0]
            if self.progress is not None:
                self.progress(after, self.upto)
        self._close(self._group, self._first, self._last, None, final=True, own=self._own)

    def _check_receipts(self, rows: list[Row]) -> None:
        keys = {(r[5], r[6]) for r in rows}
        keys.add(self._group)
        receipts = self.log.positions_of(
            [k for k in keys if type(k[0]) is str and type(k[1]) is str])
        group, first, last, own = self._group, self._first, self._last, self._own
        get = receipts.get
        for r in rows:
            key = (r[5], r[6])
            if key != group:
                expected = get(group)  # inline: one call per group is most of the cost
                if expected is None or not first <= expected <= last:
                    self._close(group, first, last, receipts, final=False, own=own)
                group, first, own = key, r[0], r[3].startswith(OWN_TOPICS)
            last = r[0]
        self._group, self._first, self._last, self._own = group, first, last, own

    def _close(self, key: tuple[Any, Any], first: int, last: int,
               receipts: dict[Key, int] | None, *, final: bool, own: bool = False) -> None:
        if type(key[0]) is not str or type(key[1]) is not str or self.receipt_break:
            return
        if receipts is None:
            receipts = self.log.positions_of([key])
        expected = receipts.get(key)
        if expected is None and own:
            return  # the service's own action: no inbound message, no receipt
        if final and last == self.upto and expected is not None:
            last = max(last, expected)  # a group cut by ``upto``: its receipt may follow
        if expected is None or not first <= expected <= last:
            where = "none" if expected is None else f"position {expected}"
            self.receipt_break = Break(
                first, "receipt", f"message ({key[0]}, {key[1]}) of positions {first}-{last}: "
                f"its receipt points to {where}")
