"""The embedded runner: follows the event store's notification log and feeds every projection.

SQLite cannot push, so a daemon thread polls ``select_notifications`` from the
lowest position any projection has recorded, every ``poll_interval_s`` or at
once when ``wake()`` is called (``POST /v1/events`` does, for read-your-writes).
Each batch is read and parsed once and handed to every projection that has not
seen it, with tracking ``{"store": last_position}`` written in the projection's
own transaction: a restart resumes exactly where each projection stopped.

Errors are never swallowed: a failing batch is logged, shown by ``status()``
and retried with exponential backoff (the batch is not committed, so nothing
is applied twice). Such errors are the store's own (unreachable, locked): an
event a projection cannot apply quarantines its aggregate instead, inside the
batch (``projections.quarantine``), and the runner goes on.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from datetime import datetime
from typing import Any

from domain.application import PmoApplication
from projections import bluegreen
from projections.base import REBUILDING
from projections.log import read_log
from projections.service import ProjectionService

log = logging.getLogger(__name__)
STORE = "store"
MAX_BACKOFF_S = 5.0
# A rebuild's batch: every projection walks the batch in turn, so its events and their
# parsed payloads should still be in the CPU's caches when the next one does (5000 events
# hold ~7 MB of payload dicts). Measured on the replay bench: 5000 -> 1000 is ~15% faster;
# 500 is no better than 1000 (more transactions).
REBUILD_BATCH = 1000


class EmbeddedRunner:
    def __init__(self, app: PmoApplication, service: ProjectionService,
                 poll_interval_s: float = 0.02, batch_size: int = 2000,
                 names: Iterable[str] | None = None,
                 on_advance: Callable[[int], None] | None = None) -> None:
        self.app = app
        # Called (in the runner's thread) with the lowest position every projection has
        # reached, after each batch commits: how another process learns of progress.
        self.on_advance = on_advance
        self.service = service
        self.poll_interval_s = poll_interval_s
        self.batch_size = batch_size
        self.names = list(names) if names is not None else service.names()
        self._positions = {n: service.projections[n].tracking().get(STORE, 0)
                           for n in self.names}
        self._done = threading.Condition()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rebuild: set[str] = set()
        self._next: dict[str, bluegreen.NextVersion] = {}  # blue/green rebuilds under way
        self.error: str | None = None

    # -- control --------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        # A rebuild that a killed process left under way goes on (its next version resumes).
        with self._done:
            self._rebuild.update(n for n in self.names
                                 if self.service.projections[n].tracking().get(REBUILDING))
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="pmo-projections", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        self._wake.set()

    def rebuild(self, name: str) -> None:
        """Rebuild projection ``name`` from the store beside the live one, then swap it in
        (``projections.bluegreen``); the live one is served and kept current meanwhile."""
        with self._done:
            self._rebuild.add(name)
        self.wake()

    def position(self) -> int:
        with self._done:
            return min(self._positions.values(), default=0)

    def wait_for(self, position: int, timeout: float) -> bool:
        """True once every projection has applied the store up to ``position``."""
        with self._done:
            return self._done.wait_for(
                lambda: min(self._positions.values(), default=0) >= position, timeout)

    def status(self) -> list[dict[str, Any]]:
        store_max = self.app.recorder.max_notification_id() or 0
        rows = self.service.status(store_max)
        for row in rows:
            if row["name"] in self._positions:
                row["position"] = self._positions[row["name"]]
                row["lag"] = max(store_max - row["position"], 0)
            nxt = self._next.get(row["name"])
            if nxt is not None:
                row["state"] = "rebuilding"
                row["rebuild"] = {"position": nxt.reached, "head": store_max}
            if self.error is not None:
                # The whole text: GET /v1/projections shows it to auditors only (viewers
                # get a generic line, api/routers/projections.py).
                row["error"] = self.error
        return rows

    # -- work -----------------------------------------------------------------------

    def _loop(self) -> None:
        backoff = self.poll_interval_s
        while not self._stop.is_set():
            try:
                count = self.run_once()
                self.error = None
                backoff = self.poll_interval_s
            except Exception as e:
                log.exception("projection batch failed; retrying in %.2fs", backoff)
                self.error = f"{type(e).__name__}: {e}"
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            if count < self.batch_size:
                self._wake.wait(self.poll_interval_s)
                self._wake.clear()

    def _start_rebuilds(self) -> None:
        with self._done:
            names, self._rebuild = self._rebuild, set()
        for name in names:
            if name in self._next:
                continue  # already under way: asking again changes nothing
            nxt = bluegreen.NextVersion(self.service.projections[name], f"next_{name}")
            nxt.open(resume=True)
            self._next[name] = nxt

    def _advance_rebuilds(self) -> int:
        """One batch for each next version, up to its live one's position; a next version
        that has reached it replaces the live one (one transaction). Events applied."""
        applied = 0
        for name, nxt in list(self._next.items()):
            cap = self._positions[name]
            applied += nxt.advance(self.app, cap, self.batch_size)
            if nxt.position() >= cap:
                swapped = bluegreen.swap([nxt], bluegreen.store_catch_up(self.app,
                                                                         self.batch_size))
                del self._next[name]
                log.info("%s: rebuilt beside the live view and %s at %d", name,
                         "swapped in" if swapped else "dropped (another rebuild was first)",
                         cap)
        return applied

    def run_once(self, until: datetime | None = None) -> int:
        """Process the next batch; the number of events read (0: nothing new)."""
        # A batch allocates tens of thousands of small dicts that all stay alive until it
        # ends: the cyclic GC would re-scan them over and over (measured: ~2x slower).
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._run_once(until)
        finally:
            if enabled:
                gc.enable()

    def _run_once(self, until: datetime | None) -> int:
        if self._rebuild:
            self._start_rebuilds()
        start = min(self._positions.values(), default=0)
        read = read_log(self.app, start, self.batch_size)
        events = read
        if until is not None:
            events = [e for e in read if e.recorded_at <= until]
            if len(events) < len(read):  # stop at the first event recorded after ``until``
                events = read[:next(i for i, e in enumerate(read) if e.recorded_at > until)]
        if not events:
            return self._advance_rebuilds() if self._next else 0
        work = []
        for name in self.names:
            position = self._positions[name]
            mine = events if position <= start else [e for e in events if e.position > position]
            if mine:
                work.append((self.service.projections[name], mine, {STORE: mine[-1].position}))
        # One transaction for all projections: fewer commits, and still each projection's
        # view and tracking row move together.
        self.service.process_together(work)
        with self._done:
            for projection, mine, _ in work:
                self._positions[projection.name] = mine[-1].position
            self._done.notify_all()
            reached = min(self._positions.values(), default=0)
        if self.on_advance is not None:
            self.on_advance(reached)
        count = len(events) if len(events) == len(read) else 0
        if self._next:
            count = max(count, self._advance_rebuilds())
        return count

    def catch_up(self, until: datetime | None = None,
                 progress: Callable[[int], None] | None = None) -> int:
        """Process until nothing is left (or ``until``); the number of events processed."""
        total = 0
        while True:
            count = self.run_once(until)
            total += count
            if progress is not None:
                progress(self.position())
            if count == 0:
                return total


def rebuild(app: PmoApplication, service: ProjectionService, names: Iterable[str] | None = None,
            until: datetime | None = None, progress: Callable[[int], None] | None = None,
            batch_size: int = REBUILD_BATCH, *, beside: bool = True,
            on_wait: Callable[[], None] | None = None) -> int:
    """Rebuild projections ``names`` (default: all) from the store; the position reached.

    Without ``until``: blue/green (``projections.bluegreen``): each is built beside its
    live version, which readers keep seeing (state ``rebuilding``), and all are swapped
    in at once when they have caught up with the store. A rebuild that was killed is
    resumed where it stopped. With ``until`` (or not ``beside``): cleared and refilled in
    place (up to ``until``), the older way, which blanks the views meanwhile.
    """
    chosen = list(names) if names is not None else service.names()
    if until is None and beside:
        return _rebuild_beside(app, service, chosen, progress, batch_size, on_wait)
    with service.db.bulk():
        for name in chosen:
            service.projections[name].clear(rebuilding=True)
        runner = EmbeddedRunner(app, service, batch_size=batch_size, names=chosen)
        runner.catch_up(until=until, progress=progress)
        for name in chosen:
            service.projections[name].finish_rebuild()
    return runner.position()


def _rebuild_beside(app: PmoApplication, service: ProjectionService, chosen: list[str],
                    progress: Callable[[int], None] | None, batch_size: int,
                    on_wait: Callable[[], None] | None = None) -> int:
    versions = [bluegreen.NextVersion(service.projections[n], f"replay_{n}") for n in chosen]
    with ExitStack() as held:
        # Another replay building the same next versions goes first (in name order: two
        # replays of overlapping sets never wait for each other both ways).
        for v in sorted(versions, key=lambda v: v.name):
            held.enter_context(bluegreen.building(v.url, on_wait))
        for v in versions:
            v.open(resume=True)
        with ExitStack() as stack:
            for v in versions:
                assert v.db is not None
                stack.enter_context(v.db.bulk())
            reached = bluegreen.build(app, versions, batch_size, progress)
        bluegreen.swap(versions, bluegreen.store_catch_up(app, batch_size))
    return reached
