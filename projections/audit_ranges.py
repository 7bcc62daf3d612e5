"""Verify in parallel: the store's positions cut into ranges, shared by worker processes.

Why processes: most of verify is per event Python work (parse the body for its
receipt, format the digest's text, two SHA-256), which holds the GIL; a thread would
not overlap it. Why it is sound: each event's digest needs only that event, and a
range (``after``, ``upto``] can start its chain from the trail's hash at ``after``
because it is only trusted once every range before it matched the trail
(``audit_verify.combine``). Receipt groups that cross a range's edge are joined and
judged by the parent (``chain.join_edges``).

The parent verifies ranges itself while ``workers - 1`` spawned children take the
next ones as they free up (a child needs about half a second to start: the parent
has done several pages by then). Ranges are handed out lowest first, and once a
break is found no range above it is started. A child that fails or dies gives its
range back to the parent. Children are started as new interpreters (never forked: the
service holds connections, pools and threads that a fork would copy) and stopped
by the parent before ``run`` returns.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing.connection
import os
import subprocess
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection

from domain.application import PmoApplication
from projections.audit_compare import Part, verify_range
from projections.chain import Progress
from projections.db import Db
from storage.urls import StoreUrl

# Below this many events one process verifies everything: starting a child costs more.
PARALLEL_FROM = 100_000
# Ranges per worker: small enough to even out unequal workers (a loaded core, the
# child's start), large enough that a range's fixed costs (two queries) do not count.
RANGES_PER_WORKER = 32
MAX_WORKERS = 4
# A child reports after each page (5,000 events, well under a second): one silent this
# long is stopped and its range verified by the parent.
STALL_S = 60.0


def default_workers() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


def ranges(store_head: int, workers: int, chunk: int | None = None) -> list[tuple[int, int]]:
    size = chunk or max(1, math.ceil(store_head / (workers * RANGES_PER_WORKER)))
    return [(a, min(a + size, store_head)) for a in range(0, store_head, size)]


def run(db: Db, app: PmoApplication, store_head: int, trail_head: int,
        progress: Progress | None = None, *, workers: int | None = None,
        chunk: int | None = None) -> list[Part]:
    """The parts (``audit_verify.Part``) of 0..store_head in order, up to and with the
    first broken one. One part, in this process, for a small store or one worker;
    ranges of ``chunk`` positions when it is given (with one worker: all in this
    process, in order, which the tests use to check the joining of ranges)."""
    workers = default_workers() if workers is None else max(1, workers)
    if chunk is None and (workers == 1 or store_head < PARALLEL_FROM):
        return [verify_range(db, app, 0, store_head, trail_head, progress=progress)]
    # One pool of child processes per process at a time: a client polling the verify
    # route must not multiply them; a verify that finds the pool busy runs here alone.
    if not _POOL_FREE.acquire(blocking=False):
        return [verify_range(db, app, 0, store_head, trail_head, progress=progress)]
    try:
        return _Pool(db, app, store_head, trail_head, progress, workers, chunk).run()
    finally:
        _POOL_FREE.release()


_POOL_FREE = threading.Lock()


class _Pool:
    def __init__(self, db: Db, app: PmoApplication, store_head: int, trail_head: int,
                 progress: Progress | None, workers: int, chunk: int | None) -> None:
        self.db, self.app = db, app
        self.store_head, self.trail_head = store_head, trail_head
        self.progress = progress
        spans = ranges(store_head, workers, chunk)
        self.count = len(spans)
        self.todo = deque(enumerate(spans))
        self.parts: dict[int, Part] = {}
        self.done: dict[int, int] = {}  # positions covered so far, per range (progress)
        self.busy: dict[Connection, tuple[_Child, int, tuple[int, int]]] = {}
        self.idle: list[_Child] = []
        self.children: list[_Child] = []
        self.workers = workers

    def run(self) -> list[Part]:
        try:
            for _ in range(self.workers - 1):
                child = _Child.start(dict(self.app.env), self.db.url, self.trail_head)
                self.children.append(child)
                self.idle.append(child)
            while True:
                taken = self._next()
                if taken is None:
                    if not self.busy:
                        break
                    self._poll(wait=True)
                    continue
                index, (after, upto) = taken
                self.parts[index] = verify_range(self.db, self.app, after, upto,
                                                 self.trail_head, open_edges=True,
                                                 progress=self._own_progress(index, after))
                self._poll(wait=False)
        finally:
            for child in self.children:
                child.stop()
        return self._ordered()

    def _next(self) -> tuple[int, tuple[int, int]] | None:
        self._dispatch()
        while self.todo:
            index, span = self.todo.popleft()
            if not self._beyond_a_break(span[0]):
                return index, span
        return None

    def _beyond_a_break(self, after: int) -> bool:
        return any(p.found is not None and p.found.position <= after
                   for p in self.parts.values())

    def _dispatch(self) -> None:
        while self.idle and self.todo:
            index, span = self.todo.popleft()
            if self._beyond_a_break(span[0]):
                continue
            child = self.idle.pop()
            try:
                child.send((index, *span))
            except OSError:  # the child is gone: the range stays for the others
                self.todo.appendleft((index, span))
                continue
            self.busy[child.output] = (child, index, span)

    def _own_progress(self, index: int, after: int) -> Callable[[int, int], None]:
        def report(position: int, _last: int) -> None:
            self._advance(index, position - after)
            self._poll(wait=False)
        return report

    def _advance(self, index: int, covered: int) -> None:
        self.done[index] = covered
        if self.progress is not None:
            self.progress(min(sum(self.done.values()), self.store_head), self.store_head)

    def _poll(self, *, wait: bool) -> None:
        conns = list(self.busy)
        if not conns:
            return
        ready = multiprocessing.connection.wait(conns, timeout=STALL_S if wait else 0)
        if wait and not ready:  # no word from any child for a long time: never a stall
            for silent in conns:
                child, index, span = self.busy.pop(silent)
                child.kill()
                self.todo.appendleft((index, span))
            return
        for conn in ready:
            assert isinstance(conn, Connection)
            child, index, span = self.busy[conn]
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError):  # died: its range goes back to the parent
                del self.busy[conn]
                self.todo.appendleft((index, span))
                continue
            if kind == "progress":
                self._advance(index, payload - span[0])
                continue
            del self.busy[conn]
            if kind == "part":
                self.parts[index] = payload
                self._advance(index, span[1] - span[0])
                self.idle.append(child)
            else:  # "error": the parent does the range; the child is not trusted again
                self.todo.appendleft((index, span))
        self._dispatch()

    def _ordered(self) -> list[Part]:
        out = []
        for index in range(self.count):
            part = self.parts.get(index)
            if part is None:  # never: a range is only skipped above a break
                raise RuntimeError(f"verify: range {index} was not verified")
            out.append(part)
            if part.found is not None:
                break
        return out


class _Child:
    """A worker process, ``python -m projections.audit_ranges``, spoken to over its
    standard input and output (pickled messages). Not ``multiprocessing.Process``: its
    spawn re-runs the parent's main script in the child, which a script without an
    ``if __name__ == "__main__"`` guard (a user's, a test runner's) does not survive."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        assert process.stdin is not None and process.stdout is not None
        # Connections own their descriptor: give them copies, close the pipe objects.
        self.input = Connection(os.dup(process.stdin.fileno()), readable=False)
        self.output = Connection(os.dup(process.stdout.fileno()), writable=False)
        process.stdin.close()
        process.stdout.close()

    @classmethod
    def start(cls, env: dict[str, str], url: StoreUrl, trail_head: int) -> _Child:
        child_env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        process = subprocess.Popen([sys.executable, "-m", "projections.audit_ranges"],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   env=child_env)
        child = cls(process)
        child.send((env, url, trail_head))  # the store's settings: never on a command line
        return child

    def send(self, message: object) -> None:
        self.input.send(message)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=5)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.input.send(None)
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:  # still inside a range nobody needs any more
            self.process.terminate()
            self.process.wait(timeout=5)
        self.input.close()
        self.output.close()


def serve(requests: Connection, replies: Connection) -> None:
    """A child: verify the ranges the parent sends until it sends None."""
    try:
        env, url, trail_head = requests.recv()
        # The parent's environment: the same store and mapper. One pooled PostgreSQL
        # connection is enough for a child (it reads one query at a time), and the
        # server's connections are shared by every process of the service.
        app = PmoApplication(env={**env, "POSTGRES_POOL_SIZE": "1",
                                  "POSTGRES_MAX_OVERFLOW": "1"})
        db = Db(url)
    except (EOFError, OSError):
        return
    try:
        while True:
            task = requests.recv()
            if task is None:
                return
            _, after, upto = task

            def report(position: int, _last: int) -> None:
                replies.send(("progress", position))

            try:
                part = verify_range(db, app, after, upto, trail_head, open_edges=True,
                                    progress=report)
            except Exception:  # told to the parent, which redoes the range
                replies.send(("error", traceback.format_exc()))
                return
            replies.send(("part", part))
    except (EOFError, OSError):
        return  # the parent is gone
    finally:
        db.close()
        app.close()


if __name__ == "__main__":
    # The channel is fd 0 and a copy of fd 1; fd 1 itself goes to stderr, so that
    # nothing printed by a library can corrupt the replies.
    channel = os.dup(1)
    os.dup2(2, 1)
    serve(Connection(0, writable=False), Connection(channel, readable=False))
