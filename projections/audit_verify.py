"""``verify``: the trail compared, position by position, with the chain recomputed from the store.

Streams both (a page at a time, never the whole store in memory) up to the store's
head as read when verification starts. The answer keeps the contract's shape and
adds what an auditor needs:

- ``{"ok": true, "checked": N, "store_head": H, "trail_head": H, "head_hash": ...}``
  only when every stored event up to the head is in the trail and matches;
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
from projections.chain import Break, Link, Progress, StoreChain
from projections.db import Db

TRAIL_PAGE = 5000


class TrailRow(NamedTuple):
    position: int
    store_id: str
    version: int
    topic: str
    recorded_us: int | None
    digest: str
    hash: str


def trail_rows(db: Db, upto: int, page: int = TRAIL_PAGE) -> Iterator[TrailRow]:
    """The trail's linked rows up to ``upto``, in position order, a page at a time."""
    after = 0
    while True:
        rows = db.query("SELECT c.position, a.store_id, a.version, a.type, a.recorded_us, "
                        "a.digest, c.hash FROM pv_audit_chain c JOIN pv_audit a ON "
                        "a.position = c.position WHERE c.position > ? AND c.position <= ? "
                        "ORDER BY c.position LIMIT ?", (after, upto, page))
        for r in rows:
            yield TrailRow(int(r[0]), r[1], int(r[2]), r[3],
                           None if r[4] is None else int(r[4]), r[5], r[6])
        if len(rows) < page:
            return
        after = int(rows[-1][0])


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


def verify(db: Db, app: PmoApplication, progress: Progress | None = None) -> dict[str, Any]:
    """Recompute the chain from the store and compare it with the trail (see module doc)."""
    chain = StoreChain(app, progress=progress)
    store_head = chain.upto
    trail_head = db.query("SELECT COALESCE(MAX(position), 0) FROM pv_audit_chain")[0][0]
    trail = trail_rows(db, max(store_head, int(trail_head)))
    checked = 0
    head_hash: str | None = None
    found: Break | None = None
    t = next(trail, None)
    for s in chain:
        if t is not None and t.position < s.position:
            found = Break(t.position, "missing", "in the trail, no longer in the store")
        elif t is None:
            found = Break(s.position, "unbuilt", "the trail has not reached this position "
                          "(never built, or still catching up): wait, or run pmo replay")
        elif t.position > s.position:
            found = Break(s.position, "inserted", "in the store, never in the trail")
        elif t.hash != s.hash:
            found = _differs(t, s)
        if chain.receipt_break is not None and (
                found is None or chain.receipt_break.position <= found.position):
            found = chain.receipt_break
        if found is not None:
            break
        checked += 1
        head_hash = s.hash
        t = next(trail, None)
    else:
        if t is not None and t.position > (app.recorder.max_notification_id() or 0):
            # The store ends before the trail (asked again: events stored since verify
            # began may be in the trail already): its tail was removed.
            found = Break(t.position, "missing", "in the trail, no longer in the store")
        elif chain.receipt_break is not None:
            found = chain.receipt_break
    out: dict[str, Any] = {"ok": found is None}
    if found is not None:
        out |= {"broken_at": found.position, "what": found.what, "detail": found.detail}
    out |= {"checked": checked, "store_head": store_head, "trail_head": int(trail_head),
            "head_hash": head_hash}
    return out


def contract(result: dict[str, Any]) -> dict[str, Any]:
    """The keys CONTRACT section 8 binds: ``{ok, checked}`` or ``{ok, broken_at}``."""
    return {k: result[k] for k in ("ok", "checked" if result["ok"] else "broken_at")}
