"""``verify``: the trail compared, position by position, with the chain recomputed from the store.

Streams both (a page at a time, never the whole store in memory) up to the store's
head as read when verification starts. A page whose (position, hash) pairs equal
the trail's is checked in one comparison; only a page that differs is walked
event by event to say where and what. The answer keeps the contract's shape and
adds what an auditor needs:

- ``{"ok": true, "checked": N, "store_head": H, "trail_head": H, "head_hash": ...}``
  only when every stored event up to the head is in the trail and matches
  (``head_hash``: the chain's hash at the last event checked);
- ``{"ok": false, "broken_at": P, "what": ..., "detail": ..., "checked": N, ...}``
  otherwise, P being the first position that differs. ``what`` is ``body`` (bytes,
  topic), ``time`` (``event_times.recorded_at``), ``receipt`` (the inbound receipt),
  ``missing`` (in the trail, gone from the store), ``inserted`` (in the store, never
  in the trail), ``order`` (another event at this position), ``chain`` (every
  event matches but the trail's hash does not: the trail itself was edited) or
  ``unbuilt`` (the trail has not reached this position: never built, or lagging).

A trail that is recomputed consistently with an edited store passes this check;
only an anchor kept elsewhere finds that (``projections.anchors``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from domain.application import PmoApplication
from projections.chain import Break, Link, Progress, Row, StoreChain
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
    """(position, hash) of the trail's linked rows in (after, upto]."""
    return [(int(p), h) for p, h in db.query(
        "SELECT c.position, c.hash FROM pv_audit_chain c JOIN pv_audit a ON "
        "a.position = c.position WHERE c.position > ? AND c.position <= ? "
        "ORDER BY c.position", (after, upto))]


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


def verify(db: Db, app: PmoApplication, progress: Progress | None = None) -> dict[str, Any]:
    """Recompute the chain from the store and compare it with the trail (see module doc)."""
    chain = StoreChain(app, progress=progress)
    store_head = chain.upto
    trail_head = int(db.query("SELECT COALESCE(MAX(position), 0) FROM pv_audit_chain")[0][0])
    checked = 0
    head_hash: str | None = None
    found: Break | None = None
    after = 0
    for rows in chain.pages():
        trail = _trail_page(db, after, rows[-1][0])
        if trail != [(r[0], r[8]) for r in rows]:  # the common case: one comparison in C
            found = _first_difference(db, after, rows, trail_head)
        broken = chain.receipt_break
        if broken is not None and (found is None or broken.position < found.position):
            found = broken
        if found is not None:
            good = [r for r in rows if r[0] < found.position]
            checked += len(good)
            head_hash = good[-1][8] if good else head_hash
            break
        checked += len(rows)
        head_hash = rows[-1][8]
        after = rows[-1][0]
    if found is None:
        last = db.query("SELECT MIN(position) FROM pv_audit_chain WHERE position > ?",
                        (after,))[0][0]
        if last is not None and last > (app.recorder.max_notification_id() or 0):
            # The store ends before the trail (asked again: events stored since verify
            # began may be in the trail already): its tail was removed.
            found = Break(int(last), "missing", "in the trail, no longer in the store")
        elif chain.receipt_break is not None:
            found = chain.receipt_break
    out: dict[str, Any] = {"ok": found is None}
    if found is not None:
        out |= {"broken_at": found.position, "what": found.what, "detail": found.detail}
    out |= {"checked": checked, "store_head": store_head, "trail_head": trail_head,
            "head_hash": head_hash}
    return out


def contract(result: dict[str, Any]) -> dict[str, Any]:
    """The keys CONTRACT section 8 binds: ``{ok, checked}`` or ``{ok, broken_at}``."""
    return {k: result[k] for k in ("ok", "checked" if result["ok"] else "broken_at")}
