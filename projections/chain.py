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

import hashlib
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any, NamedTuple, Protocol

import orjson

from domain.application import Key, PmoApplication
from projections.audit import GENESIS
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


class Group(NamedTuple):
    """Adjacent events naming one message: its key, first and last position, whether it
    is the service's own action, and where it starts in the range read (``checked``:
    events before it, ``before``: the chain's hash before it), for a break's report."""
    key: tuple[Any, Any]
    first: int
    last: int
    own: bool
    checked: int
    before: str


_UNSET = object()  # no group open yet: unequal to any source or id


def _group(g: tuple[Any, ...], last: int) -> Group:
    """A Group from ``_check_receipts``' open tuple, ending at ``last``."""
    return Group((g[0], g[1]), g[2], last, g[3].startswith(OWN_TOPICS), g[4], g[5])


# A row of ``StoreChain.pages``: the fields of ``Link``, as a plain tuple (cheaper).
Row = tuple[int, str, int, str, int | None, Any, Any, str, str]


def receipt_break(group: Group, expected: int | None) -> Break | None:
    """The break of ``group`` when its message's receipt is at ``expected`` (None: none)."""
    key = group.key
    if type(key[0]) is not str or type(key[1]) is not str:
        return None  # no message named (or a damaged body: its digest tells)
    if expected is None and group.own:
        return None  # the service's own action: no inbound message, no receipt
    if expected is not None and group.first <= expected <= group.last:
        return None
    where = "none" if expected is None else f"position {expected}"
    return Break(group.first, "receipt", f"message ({key[0]}, {key[1]}) of positions "
                 f"{group.first}-{group.last}: its receipt points to {where}")


class StoreChain:
    """Iterate for the chain's links in position order over (``after``, ``upto``]
    (default: the whole store); ``pages()`` gives them as lists of plain tuples, a page
    at a time (what ``verify`` reads). ``start_hash`` is the chain's hash at ``after``.

    ``receipt_break`` is set as soon as a group of events fails its receipt check
    (when the group ends: possibly a page after its first position); ``receipt_at``
    then holds (events read before it, the chain's hash before it).

    With ``open_edges`` (a range verified apart from its neighbours) the first and
    the last group are not judged here, as they may continue in the neighbouring
    ranges: they are left in ``opening`` and ``closing`` (one group: both) for the
    caller to join with its neighbours' (``join_edges``).
    """

    def __init__(self, app: PmoApplication, upto: int | None = None,
                 progress: Progress | None = None, page: int = PAGE, *, after: int = 0,
                 start_hash: str = GENESIS, open_edges: bool = False) -> None:
        self.app = app
        self.log: StoreLog = app.recorder  # type: ignore[assignment]
        self.upto = upto if upto is not None else (self.log.max_notification_id() or 0)
        self.after = after
        self.start_hash = start_hash
        self.progress = progress
        self.page = page
        self.open_edges = open_edges
        self.receipt_break: Break | None = None
        self.receipt_at: tuple[int, str] = (0, start_hash)
        self.head: tuple[int, str] = (after, start_hash)
        self.count = 0  # events read so far
        self.opening: Group | None = None
        self.closing: Group | None = None
        self._open: tuple[Any, ...] | None = None  # the group still open (see _check_receipts)
        self._last = 0  # the open group's last position
        self._opening_pending = open_edges

    @property
    def current(self) -> Group | None:
        """The group still open (the last one read), up to the last event read."""
        return None if self._open is None else _group(self._open, self._last)

    def __iter__(self) -> Iterator[Link]:
        for rows in self.pages():
            for row in rows:
                yield Link._make(row)

    def _read(self) -> Iterator[list[Any]]:
        """The store's rows in (after, upto], a page at a time. (One streaming cursor
        instead of a query per page was measured: no faster on SQLite, 2.2 against 2.4 us
        an event, and it would hold a pooled connection for the whole pass.)"""
        after = self.after
        while after < self.upto:
            logged = [r for r in self.log.log_with_times(after, min(self.page, self.upto - after))
                      if r[0] <= self.upto]
            if not logged:
                return
            yield logged
            after = logged[-1][0]

    def pages(self) -> Generator[list[Row], None, None]:
        prev = self.start_hash
        mapper = self.app.mapper
        plain = mapper.cipher is not None or mapper.compressor is not None
        loads, sha256 = orjson.loads, hashlib.sha256
        for logged in self._read():
            before = prev
            rows: list[Row] = []
            append = rows.append
            # The hot loop (a million turns per verification of a large store): locals
            # only. The digest's parts come from the stored row and the stored bytes.
            for position, oid, version, topic, state, us in logged:
                try:
                    payload = loads(plain_state(mapper, state) if plain else state)
                except (orjson.JSONDecodeError, ValueError):
                    payload = None  # damaged bytes: the digest differs, no receipt claimed
                if type(payload) is dict:
                    source, event_id = payload.get("source"), payload.get("event_id")
                else:
                    source = event_id = None
                # ``audit.digest`` and ``audit.link``, inlined (two calls an event saved);
                # every verify of a trail written with those functions checks they agree.
                d = sha256(f"{position}\n{oid}\n{version}\n{topic}\n"
                           f"{'' if us is None else us}\n{source or ''}\n{event_id or ''}\n"
                           .encode() + state).hexdigest()
                prev = sha256((prev + d).encode()).hexdigest()
                append((position, oid, version, topic, us, source, event_id, d, prev))
            self._check_receipts(rows, before)
            self.count += len(rows)
            self.head = (rows[-1][0], prev)
            yield rows
            if self.progress is not None:
                self.progress(rows[-1][0], self.upto)
        self._finish()

    def _check_receipts(self, rows: list[Row], before: str) -> None:
        keys = {(r[5], r[6]) for r in rows}
        g = self._open
        if g is not None:
            keys.add((g[0], g[1]))
        receipts = self.log.positions_of(
            [k for k in keys if type(k[0]) is str and type(k[1]) is str])
        get: Callable[[Any], int | None] = receipts.get
        # The open group as a plain tuple (source, id, first, topic, checked, before):
        # a NamedTuple per group cost a fifth of verify's time (about one group per
        # event). A Group is only made for a group that is not simply fine.
        source, event_id = (_UNSET, _UNSET) if g is None else (g[0], g[1])
        last, count, prev = self._last, self.count, before
        for r in rows:
            if r[6] != event_id or r[5] != source:
                if g is not None:
                    expected = get((source, event_id))
                    if (self._opening_pending or expected is None
                            or not g[2] <= expected <= last):
                        self._ended(_group(g, last), expected)
                g = (r[5], r[6], r[0], r[3], count, prev)
                source, event_id = r[5], r[6]
            last = r[0]
            count += 1
            prev = r[8]
        self._open, self._last = g, last

    def _ended(self, group: Group, expected: int | None) -> None:
        if self._opening_pending:  # may continue the range before: the caller joins it
            self.opening = group
            self._opening_pending = False
        else:
            self._judge(group, expected)

    def _judge(self, group: Group, expected: int | None) -> None:
        if self.receipt_break is not None:
            return  # groups end in position order: the first break found is the first
        broken = receipt_break(group, expected)
        if broken is not None:
            self.receipt_break = broken
            self.receipt_at = (group.checked, group.before)

    def _finish(self) -> None:
        group = self.current
        if group is None:
            return
        if self.open_edges:
            self.closing = group
            if self._opening_pending:
                self.opening = group
            return
        key = group.key
        if type(key[0]) is not str or type(key[1]) is not str or self.receipt_break:
            return
        expected = self.log.positions_of([key]).get(key)
        if group.last == self.upto and expected is not None:
            # A group cut by ``upto``: its receipt may follow.
            group = group._replace(last=max(group.last, expected))
        self._judge(group, expected)


def join_edges(edges: list[tuple[Group, Group]], log: StoreLog, upto: int, *,
               cut: bool = False) -> tuple[Group, Break] | None:
    """Judge the edge groups of consecutive ranges, ``(opening, closing)`` of each
    non-empty range in position order: a range's closing group and the next one's
    opening group naming one message are one group (a range that is one group joins
    both neighbours). The first break with its group (whose ``checked``/``before``
    are those of the range it starts in), or None."""
    joined: list[Group] = []
    for opening, closing in edges:
        if joined and joined[-1].key == opening.key:  # adjacent: the previous range's last
            joined[-1] = joined[-1]._replace(last=opening.last)
        else:
            joined.append(opening)
        if closing is not opening:
            joined.append(closing)
    named = {g.key for g in joined if type(g.key[0]) is str and type(g.key[1]) is str}
    receipts = log.positions_of(named) if named else {}
    if cut and joined:
        joined.pop()  # as in one pass: a group a break cut short is not judged
    for n, group in enumerate(joined):
        expected = receipts.get(group.key)
        judged = group
        if n == len(joined) - 1 and not cut and group.last == upto and expected is not None:
            judged = group._replace(last=max(group.last, expected))  # as in ``_finish``
        broken = receipt_break(judged, expected)
        if broken is not None:
            return group, broken
    return None
