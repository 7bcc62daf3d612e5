"""Prometheus metrics in the text exposition format, written by hand.

Three families are enough for dashboards and alerts: requests by route and
status, ingest outcomes by status, and each projection's position and lag. A
hand-written registry avoids a dependency for a few counters; every update
takes one lock, which costs far less than the request it counts.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str, int]] = Counter()
        self._seconds: dict[tuple[str, str], float] = {}
        self._ingest: Counter[str] = Counter()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(method, route, status)] += 1
            key = (method, route)
            self._seconds[key] = self._seconds.get(key, 0.0) + seconds

    def count_ingest(self, statuses: Iterable[str]) -> None:
        counts = Counter(statuses)
        with self._lock:
            self._ingest.update(counts)

    def ingest_count(self, status: str) -> int:
        with self._lock:
            return self._ingest[status]

    def render(self, projections: Iterable[Mapping[str, Any]] = (),
               pipeline: Mapping[str, Any] | None = None) -> str:
        with self._lock:
            requests = sorted(self._requests.items())
            seconds = sorted(self._seconds.items())
            ingest = dict(self._ingest)
        lines = ["# HELP pmo_http_requests_total HTTP requests answered, by route and status.",
                 "# TYPE pmo_http_requests_total counter"]
        lines += [f'pmo_http_requests_total{{method="{m}",route="{_esc(r)}",status="{s}"}} {n}'
                  for (m, r, s), n in requests]
        lines += ["# HELP pmo_http_request_seconds_total Time spent answering, by route.",
                  "# TYPE pmo_http_request_seconds_total counter"]
        lines += [f'pmo_http_request_seconds_total{{method="{m}",route="{_esc(r)}"}} {t:.6f}'
                  for (m, r), t in seconds]
        lines += ["# HELP pmo_ingest_events_total Inbound events by outcome.",
                  "# TYPE pmo_ingest_events_total counter"]
        for status in ("accepted", "duplicate", "queued", "invalid", "rejected"):
            lines.append(f'pmo_ingest_events_total{{status="{status}"}} {ingest.get(status, 0)}')
        projections = list(projections)
        for family, help_text, key in (
                ("pmo_projection_position", "The view's watermark: every stored event at or "
                 "below it is applied.", "position"),
                ("pmo_projection_lag", "Store head minus the view's watermark.", "lag")):
            lines += [f"# HELP {family} {help_text}", f"# TYPE {family} gauge"]
            lines += [f'{family}{{projection="{_esc(str(p["name"]))}"}} {int(p.get(key) or 0)}'
                      for p in projections]
        lines += pipeline_lines(pipeline)
        return "\n".join(lines) + "\n"


def pipeline_lines(pipeline: Mapping[str, Any] | None) -> list[str]:
    """The gauges of the pipeline ahead of the views (none when it could not be read)."""
    if pipeline is None:
        return []
    lines = []
    for stage, help_text in (("inbound", "Messages on pmo.inbound not yet ingested "
                              "(parked ones included)."),
                             ("parked", "Inbound events waiting for an aggregate they name."),
                             ("relay", "Stored events not yet relayed to pmo.events.")):
        if pipeline.get(stage) is not None:
            lines += [f"# HELP pmo_pipeline_{stage} {help_text}",
                      f"# TYPE pmo_pipeline_{stage} gauge",
                      f"pmo_pipeline_{stage} {int(pipeline[stage])}"]
    return lines


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class RequestMetrics:
    """Counts every answer by its route template (``/v1/projects/{id}``), never by raw path."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(scope["method"], template, status,
                                         time.perf_counter() - started)
