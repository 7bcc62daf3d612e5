"""``GET /v1/stream``: server-sent events telling dashboards that the views have moved.

One poller per process, shared by every open stream: every ``interval_s`` it reads the
projections' tracking rows and the store's last position (two small queries, in the
thread pool), and when either changed it wakes every stream. The poller runs only while
a stream is open. Clients read the stream with ``fetch()`` so the key travels in the
``Authorization`` header (``EventSource`` cannot send one, and a key never goes in a URL).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.auth import Viewer
from api.deps import Services, ServicesDep
from api.edges import HEAD_KEY
from api.problems import Problem

router = APIRouter(tags=["dashboard"])

POLL_S = 0.2
KEEPALIVE_S = 15.0
# A stream ends after this long and the client reconnects: no connection is held forever,
# so a server shutting down waits for none of them long.
LIFETIME_S = 60.0
Signature = tuple[Any, ...]
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def read_positions(services: Services) -> tuple[Signature, dict[str, Any]]:
    """Where the views and the store stand now (cheap: a few tracking rows, one max)."""
    rows = services.projections.db.query("SELECT projection, key, value FROM pv_tracking")
    store = services.app.recorder.max_notification_id() or 0
    positions: dict[str, int] = {}
    for name, key, value in rows:
        if key in ("_position", "store"):
            positions[str(name)] = int(value)
    signature = (store, tuple(sorted((str(n), str(k), str(v)) for n, k, v in rows)))
    return signature, {"store": store, "positions": positions}


class ViewWatch:
    """The shared poller, and the bound on open streams."""

    def __init__(self, read: Callable[[], tuple[Signature, dict[str, Any]]],
                 max_streams: int, interval_s: float = POLL_S) -> None:
        self._read = read
        self.max_streams = max_streams
        self.interval_s = interval_s
        self.seq = 0
        self.state: dict[str, Any] = {}
        self._signature: Signature | None = None
        self._waiters: set[asyncio.Event] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def open_streams(self) -> int:
        return len(self._waiters)

    def subscribe(self) -> asyncio.Event:
        if len(self._waiters) >= self.max_streams:
            raise Problem(429, "Too many streams", f"{self.max_streams} live streams are "
                          "open already; close one or retry later", kind="too-many-streams")
        event = asyncio.Event()
        self._waiters.add(event)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._poll())
        return event

    def unsubscribe(self, event: asyncio.Event) -> None:
        self._waiters.discard(event)

    async def refresh(self) -> bool:
        """Read the positions once; True when they moved since the last read."""
        signature, state = await run_in_threadpool(self._read)
        if signature == self._signature:
            return False
        self._signature = signature
        self.seq += 1
        self.state = state
        return True

    async def _poll(self) -> None:
        while self._waiters:
            try:
                moved = await self.refresh()
            except Exception:  # a store that does not answer now may later; streams stay open
                moved = False
            if moved:
                for event in self._waiters:
                    event.set()
            await asyncio.sleep(self.interval_s)

    def frame(self) -> bytes:
        data = orjson.dumps({"seq": self.seq, **self.state})
        return b"event: views\nid: " + str(self.seq).encode() + b"\ndata: " + data + b"\n\n"


def watch_of(services: Services) -> ViewWatch:
    watch = services.extras.get("view_watch")
    if watch is None:
        watch = ViewWatch(lambda: read_positions(services),
                          services.settings.dashboard_max_streams)
        services.extras["view_watch"] = watch
    assert isinstance(watch, ViewWatch)
    return watch


@router.get("/v1/stream", summary="Server-sent events: one 'views' event each time views move",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}},
                       429: {"description": "too many open streams",
                             "content": {"application/problem+json": {}}}})
async def stream(request: Request, _: Viewer, services: ServicesDep) -> Response:
    if request.method == "HEAD" or request.scope.get(HEAD_KEY):
        # Headers only, at once: streaming frames nobody may send kept the connection
        # busy (a keep-alive client's next request on it waited up to LIFETIME_S) and
        # held one of the max_streams slots meanwhile.
        return Response(media_type="text/event-stream", headers=HEADERS)
    watch = watch_of(services)
    event = watch.subscribe()
    if not watch.state:
        try:
            await watch.refresh()
        except Exception:
            watch.unsubscribe(event)
            raise

    async def frames() -> AsyncIterator[bytes]:
        ends = time.monotonic() + LIFETIME_S
        try:
            event.clear()  # what it was set for is in this first frame
            sent = watch.seq
            yield b"retry: 1000\n" + watch.frame()
            while time.monotonic() < ends:
                try:
                    await asyncio.wait_for(event.wait(), KEEPALIVE_S)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                event.clear()
                if await request.is_disconnected():
                    return
                if watch.seq != sent:  # each frame says something new
                    sent = watch.seq
                    yield watch.frame()
        finally:
            watch.unsubscribe(event)

    return StreamingResponse(frames(), media_type="text/event-stream", headers=HEADERS)
