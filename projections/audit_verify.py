"""``verify``: the trail compared, position by position, with the chain recomputed from the store.

Streams both (a page at a time, never the whole store in memory) up to the store's
head as read when verification starts, in one range (``audit_compare``) or, for a
large store, in ranges shared by worker processes (``audit_ranges``). The answer
keeps the contract's shape and adds what an auditor needs:

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

from typing import Any

from domain.application import PmoApplication
from projections import audit_ranges
from projections.audit_compare import Part
from projections.chain import Break, Progress, join_edges
from projections.db import Db


def combine(app: PmoApplication, parts: list[Part], store_head: int,
            joined: bool) -> tuple[Break | None, int, str | None]:
    """(first break, events checked before it, the chain's hash there) over the parts of
    ``0..store_head`` in order. ``joined``: the parts were verified with open edges, whose
    groups are judged here.

    Why the parts' answers add up: the first range starts at GENESIS, each later one at
    the trail's hash at its start; a range is only trusted when every range before it
    was found equal to the trail, up to its last link, so its start hash is the hash
    recomputed from the store. Every break found at or after an earlier range's break
    is ignored, so the first break is the one the sequential pass would report."""
    first = next((n for n, p in enumerate(parts) if p.found is not None), len(parts))
    candidates: list[tuple[int, Break, int, tuple[int, str]]] = []
    if first < len(parts):
        part = parts[first]
        assert part.found is not None
        candidates.append((part.found.position, part.found, first, part.found_at))
    if joined:
        edges = [p.edges for p in parts[:first + 1] if p.edges is not None]
        cut = first < len(parts) and parts[first].cut
        judged = join_edges(edges, app.recorder, store_head,  # type: ignore[arg-type]
                            cut=cut)
        if judged is not None:
            group, broken = judged
            at = next(n for n, p in enumerate(parts) if p.after < group.first <= p.upto)
            candidates.append((broken.position, broken, at, (group.checked, group.before)))
    if not candidates:
        checked = sum(p.events for p in parts)
        heads = [p.head for p in parts if p.events]
        return None, checked, heads[-1] if heads else None
    _, found, at, (before, hash_before) = min(candidates, key=lambda c: c[0])
    checked = sum(p.events for p in parts[:at]) + before
    return found, checked, hash_before if checked else None


def verify(db: Db, app: PmoApplication, progress: Progress | None = None, *,
           workers: int | None = None, chunk: int | None = None) -> dict[str, Any]:
    """Recompute the chain from the store and compare it with the trail (see module doc).

    A large store is cut into ranges verified by ``workers`` processes (default: up to
    the machine's cores, see ``projections.audit_ranges``); a small one in this process."""
    store_head = app.recorder.max_notification_id() or 0
    trail_head = int(db.query("SELECT COALESCE(MAX(position), 0) FROM pv_audit_chain")[0][0])
    parts = audit_ranges.run(db, app, store_head, trail_head, progress, workers=workers,
                             chunk=chunk)
    found, checked, head_hash = combine(app, parts, store_head, joined=len(parts) > 1)
    if found is None:
        last = db.query("SELECT MIN(position) FROM pv_audit_chain WHERE position > ?",
                        (store_head,))[0][0]
        if last is not None and last > (app.recorder.max_notification_id() or 0):
            # The store ends before the trail (asked again: events stored since verify
            # began may be in the trail already): its tail was removed.
            found = Break(int(last), "missing", "in the trail, no longer in the store")
    out: dict[str, Any] = {"ok": found is None}
    if found is not None:
        out |= {"broken_at": found.position, "what": found.what, "detail": found.detail}
    out |= {"checked": checked, "store_head": store_head, "trail_head": trail_head,
            "head_hash": head_hash}
    return out


def contract(result: dict[str, Any]) -> dict[str, Any]:
    """The keys CONTRACT section 8 binds: ``{ok, checked}`` or ``{ok, broken_at}``."""
    return {k: result[k] for k in ("ok", "checked" if result["ok"] else "broken_at")}
