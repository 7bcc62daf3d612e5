"""One range of positions (``after``, ``upto``] of the store compared with the trail.

``verify_range`` streams both a page at a time. A page whose (position, hash) pairs
equal the trail's is checked in one comparison; only a page that differs is walked
event by event to say where and what (``projections.audit_verify`` documents the
answers). A range after the first starts its chain at the trail's hash: see
``audit_verify.combine`` for why that is sound.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from domain.application import PmoApplication
from projections.audit import GENESIS
from projections.chain import Break, Group, Link, Progress, Row, StoreChain
from projections.db import Db


class TrailRow(NamedTuple):
    position: int
    store_id: str
    version: int
    topic: str
    recorded_us: int | None
    digest: str
    hash: str


def _trail_page(db: Db, after: int, upto: int) -> list[tuple[int, str]]:
    """(position, hash) of the trail's linked rows in (after, upto], as the store's
    tuples (both stores give the integer column as int: compared as they come)."""
    return db.query(
        "SELECT c.position, c.hash FROM pv_audit_chain c JOIN pv_audit a ON "
        "a.position = c.position WHERE c.position > ? AND c.position <= ? "
        "ORDER BY c.position", (after, upto))


def _trail_rows(db: Db, after: int, upto: int) -> Iterator[TrailRow]:
    for r in db.query("SELECT c.position, a.store_id, a.version, a.type, a.recorded_us, "
                      "a.digest, c.hash FROM pv_audit_chain c JOIN pv_audit a ON "
                      "a.position = c.position WHERE c.position > ? AND c.position <= ? "
                      "ORDER BY c.position", (after, upto)):
        yield TrailRow(int(r[0]), r[1], int(r[2]), r[3],
                       None if r[4] is None else int(r[4]), r[5], r[6])


def _differs(t: TrailRow, s: Link) -> Break:
    if (t.store_id, t.version) != (s.store_id, s.version):
        return Break(s.position, "order", f"the store holds {s.store_id} v{s.version} here, "
                     f"the trail {t.store_id} v{t.version}")
    if t.recorded_us != s.recorded_us:
        return Break(s.position, "time", f"recorded_us is {s.recorded_us} in the store, "
                     f"{t.recorded_us} in the trail")
    if t.digest != s.digest:
        return Break(s.position, "body", "the stored event's bytes or topic changed")
    return Break(s.position, "chain", "the event matches but the trail's hash does not")


def _first_difference(db: Db, after: int, rows: list[Row],
                      trail_head: int) -> Break | None:
    """Where a page of the store and the trail part (slow path: only on a mismatch)."""
    trail = _trail_rows(db, after, rows[-1][0])
    t = next(trail, None)
    for row in rows:
        s = Link._make(row)
        if t is not None and t.position < s.position:
            return Break(t.position, "missing", "in the trail, no longer in the store")
        if t is None:
            if s.position > trail_head:
                return Break(s.position, "unbuilt", "the trail has not reached this position "
                             "(never built, or still catching up): wait, or run pmo replay")
            return Break(s.position, "inserted", "in the store, never in the trail")
        if t.position > s.position:
            return Break(s.position, "inserted", "in the store, never in the trail")
        if t.hash != s.hash:
            return _differs(t, s)
        t = next(trail, None)
    if t is not None:
        return Break(t.position, "missing", "in the trail, no longer in the store")
    return None


class Part(NamedTuple):
    """What verifying one range (``after``, ``upto``] of positions gave."""
    after: int
    upto: int
    events: int  # store events read and found matching (all of the range when not broken)
    head: str  # the chain's hash at the last of them (the range's start hash if none)
    found: Break | None  # the range's first break
    found_at: tuple[int, str]  # (events of the range before it, the chain's hash before it)
    edges: tuple[Group, Group] | None  # the range's first and last group (open_edges)
    cut: bool  # ``edges``' last group was cut by the break (its receipt may follow)


def trail_hash_at(db: Db, position: int) -> str:
    """The trail's hash at its last link at or before ``position`` (GENESIS if none): where
    a range's chain starts. Only used once the ranges before were found equal to the trail,
    so it is then the hash recomputed from the store (see ``combine``)."""
    if position == 0:
        return GENESIS
    rows = db.query("SELECT hash FROM pv_audit_chain WHERE position <= ? "
                    "ORDER BY position DESC LIMIT 1", (position,))
    return str(rows[0][0]) if rows else GENESIS


def verify_range(db: Db, app: PmoApplication, after: int, upto: int, trail_head: int, *,
                 open_edges: bool = False, progress: Progress | None = None) -> Part:
    """Compare the store's chain over (``after``, ``upto``] with the trail's."""
    start = trail_hash_at(db, after)
    chain = StoreChain(app, upto, progress, after=after, start_hash=start,
                       open_edges=open_edges)
    found: Break | None = None
    found_at = (0, start)
    count, head, page_after = 0, start, after
    pages = chain.pages()
    for rows in pages:
        trail = _trail_page(db, page_after, rows[-1][0])
        if trail != [(r[0], r[8]) for r in rows]:  # the common case: one comparison in C
            found = _first_difference(db, page_after, rows, trail_head)
            if found is not None:
                good = [r for r in rows if r[0] < found.position]
                found_at = (count + len(good), good[-1][8] if good else head)
        broken = chain.receipt_break
        if broken is not None and (found is None or broken.position < found.position):
            found, found_at = broken, chain.receipt_at
        if found is not None:
            pages.close()
            break
        count, head, page_after = count + len(rows), rows[-1][8], rows[-1][0]
    if found is None and page_after < upto:
        # Trail rows past the range's last stored event: removed from the store.
        gone = db.query("SELECT MIN(position) FROM pv_audit_chain WHERE position > ? AND "
                        "position <= ?", (page_after, upto))[0][0]
        if gone is not None:
            found = Break(int(gone), "missing", "in the trail, no longer in the store")
            found_at = (count, head)
    if found is None and chain.receipt_break is not None:
        found, found_at = chain.receipt_break, chain.receipt_at
    edges: tuple[Group, Group] | None = None
    cut = False
    if open_edges:
        if found is None:
            edges = None if chain.opening is None else (chain.opening,
                                                        chain.closing or chain.opening)
        elif chain.opening is not None:
            edges = (chain.opening, chain.opening)  # complete: its end was read
        elif chain.current is not None:  # the range's only group so far: cut by the break
            edges, cut = (chain.current, chain.current), True
    return Part(after, upto, count, head, found, found_at, edges, cut)
