"""The embedded runner in a child process: ``pmo serve``'s views get a core of their own.

Storing and projecting are both CPU-bound Python; in one process they share one
GIL, so every event was paid for twice on the same core (``POST /v1/events``
measured 10.3k events/s with the runner as a thread, 17-19k with it elsewhere,
on 2 cores). The child runs the very same ``EmbeddedRunner`` on its own
connections to both stores; the API process keeps storing and serving reads.

Two one-way pipes join them, nothing else is shared:

- parent -> child: ``("wake", None)`` after a write (read-your-writes), ``("rebuild",
  name)``, ``("stop", None)``;
- child -> parent: ``("position", n)`` after every committed batch (the lowest
  position every projection has reached) and ``("error", text | None)``.

A position report also invalidates the API's view cache, so a read that follows
``wait_for`` never serves bytes older than the write. If the child dies, the API
keeps answering (views stay as they were, ``GET /v1/projections`` shows the
error) and a new child starts after ``restart_delay_s``; it resumes from the
positions committed with the views, so nothing is applied twice or skipped.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import threading
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from domain.application import PmoApplication
from pmo.settings import Settings
from projections.runner import STORE
from projections.service import ProjectionService

log = logging.getLogger(__name__)
ERROR_POLL_S = 0.2


class RunnerProcess:
    """The API side of the child: the interface of ``EmbeddedRunner`` the routes use."""

    def __init__(self, settings: Settings, app: PmoApplication, service: ProjectionService,
                 restart_delay_s: float = 1.0) -> None:
        self._settings = settings
        self._app = app
        self._service = service
        self._restart_delay_s = restart_delay_s
        self._ctx = multiprocessing.get_context("spawn")  # no inherited threads or connections
        self._done = threading.Condition()
        # Until the child reports, the positions committed with the views.
        self._position = min((p.tracking().get(STORE, 0)
                              for p in service.projections.values()), default=0)
        self._send_lock = threading.Lock()
        self._commands: Connection | None = None
        self._process: BaseProcess | None = None
        self._stopping = threading.Event()
        self.error: str | None = None
        self.restarts = 0
        self._ready = threading.Event()
        self._start_failed = False

    # -- lifecycle ------------------------------------------------------------------

    def start(self, ready_timeout: float = 60.0) -> None:
        """Start the child and wait until its runner runs: reads are then read-your-writes
        from the first request on (a child takes about a second to import and open)."""
        if self._process is not None:
            return
        self._stopping.clear()
        self._spawn()
        if not self._ready.wait(ready_timeout) or self._start_failed:
            self.stop()
            raise RuntimeError(f"the projection process did not start: {self.error}")

    def _spawn(self) -> None:
        reports_in, reports_out = self._ctx.Pipe(duplex=False)
        commands_in, commands_out = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(target=child_main, name="pmo-projections", daemon=True,
                                    args=(self._settings, commands_in, reports_out))
        process.start()
        reports_out.close()  # the child holds these ends now: EOF means it is gone
        commands_in.close()
        with self._send_lock:
            self._commands, self._process = commands_out, process
        threading.Thread(target=self._follow, args=(reports_in, process),
                         name="pmo-projections-reports", daemon=True).start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._send(("stop", None))
        process = self._process
        if process is not None:
            process.join(timeout)
            if process.is_alive():
                process.terminate()
                process.join(timeout)
        self._process = None

    def _follow(self, reports: Connection, process: BaseProcess) -> None:
        """Reads the child's reports until it exits; then, unless stopping, starts another."""
        try:
            while True:
                kind, value = reports.recv()
                if kind == "ready":
                    self.error = None  # a new child runs: an earlier one's death is over
                    self._ready.set()
                elif kind == "position":
                    self._service.invalidate()
                    with self._done:
                        self._position = value
                        self._done.notify_all()
                elif kind == "error":
                    self.error = value
        except (EOFError, OSError):
            pass
        finally:
            reports.close()
        process.join(timeout=5)
        if self._stopping.is_set():
            return
        if not self._ready.is_set():  # it never started: not retried, start() says why
            self.error = (f"the projection process failed to start (code {process.exitcode}); "
                          "its log is above")
            self._start_failed = True
            self._ready.set()
            return
        self.error = (f"the projection process exited (code {process.exitcode}); "
                      f"restarting in {self._restart_delay_s:g}s")
        log.error("%s", self.error)
        if self._stopping.wait(self._restart_delay_s):
            return
        self.restarts += 1
        self._spawn()

    # -- what the API calls -----------------------------------------------------------

    def _send(self, message: tuple[str, Any]) -> None:
        with self._send_lock:
            if self._commands is None:
                return
            with contextlib.suppress(OSError):  # the child is gone; ``_follow`` restarts it
                self._commands.send(message)

    def wake(self) -> None:
        self._send(("wake", None))

    def rebuild(self, name: str) -> None:
        self._send(("rebuild", name))

    def position(self) -> int:
        with self._done:
            return self._position

    def pid(self) -> int | None:
        process = self._process
        return None if process is None else process.pid

    def wait_for(self, position: int, timeout: float) -> bool:
        """True once every projection has applied the store up to ``position``."""
        with self._done:
            return self._done.wait_for(lambda: self._position >= position, timeout)

    def status(self) -> list[dict[str, Any]]:
        rows = self._service.status(self._app.recorder.max_notification_id() or 0)
        if self.error is not None:
            for row in rows:
                row["error"] = self.error
        return rows


def child_main(settings: Settings, commands: Connection, reports: Connection) -> None:
    """The child: an ``EmbeddedRunner`` thread, steered by the parent's commands."""
    # Imported here: the parent needs none of this to start the child.
    from pmo.bootstrap import build_application  # noqa: PLC0415
    from pmo.logs import configure  # noqa: PLC0415
    from projections.runner import EmbeddedRunner  # noqa: PLC0415
    from projections.service import build_projections  # noqa: PLC0415

    configure(settings)
    app = build_application(settings)
    service = build_projections(settings)
    lock = threading.Lock()

    def report(message: tuple[str, Any]) -> None:
        with lock:
            reports.send(message)

    runner = EmbeddedRunner(app, service, poll_interval_s=settings.poll_interval_ms / 1000,
                            on_advance=lambda n: report(("position", n)))
    runner.start()
    report(("ready", runner.position()))
    reported_error: str | None = None
    try:
        while True:
            if commands.poll(ERROR_POLL_S):
                kind, value = commands.recv()
                if kind == "wake":
                    runner.wake()
                elif kind == "rebuild":
                    runner.rebuild(value)
                elif kind == "stop":
                    return
            if runner.error != reported_error:
                reported_error = runner.error
                report(("error", reported_error))
    except (EOFError, OSError):
        return  # the parent is gone: stop with it
    finally:
        runner.stop()
        service.close()
        app.close()
