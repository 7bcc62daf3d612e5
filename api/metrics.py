"""Prometheus metrics, with the standard client (``prometheus_client``).

Each app has a registry of its own (tests build many apps in one process). Families:

- ``pmo_http_request_duration_seconds{method,route,status}``: a histogram of the time
  to answer, by route template (``/v1/projects/{project_id}``, never the raw path), so
  a p99 is ``histogram_quantile(0.99, rate(..._bucket[5m]))``;
- ``pmo_http_requests_total{method,route,status}``: requests answered (as before);
- ``pmo_ingest_events_total{status}`` and ``pmo_ingest_events_by_type_total{status,type}``;
- ``pmo_projection_position{projection}`` and ``pmo_projection_lag{projection}``,
  read from the projections at each scrape.

More families join through ``Metrics.registry`` (a collector registered there is
scraped with the rest). An observation costs a dict look-up and the client's lock:
a few microseconds beside a request.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest.counters import IngestCounters

# The text format generate_latest writes (0.0.4), which every Prometheus reads.
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
# Seconds; reads answered from the cache take well under a millisecond.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0)


# Label values a client cannot multiply: HTTP methods outside these are counted as
# "other" (CloudEvent types: ingest.counters).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._latency = Histogram(
            "pmo_http_request_duration_seconds", "Time to answer an HTTP request, by route "
            "template and status.", ("method", "route", "status"), buckets=LATENCY_BUCKETS,
            registry=self.registry)
        self._requests = Counter(
            "pmo_http_requests", "HTTP requests answered, by route and status.",
            ("method", "route", "status"), registry=self.registry)
        self._ingest = IngestCounters(self.registry)
        self._position = Gauge("pmo_projection_position", "The view's watermark: every "
                               "stored event at or below it is applied.", ("projection",),
                               registry=self.registry)
        self._lag = Gauge("pmo_projection_lag", "Store head minus the view's watermark.",
                          ("projection",), registry=self.registry)
        self._quarantined = Gauge(
            "pmo_projection_quarantined", "Aggregates set aside after an event the "
            "projection could not apply (GET /v1/quarantine).", ("projection",),
            registry=self.registry)
        self._held = Gauge("pmo_projection_held_events", "Events of quarantined aggregates "
                           "held for a retry.", ("projection",), registry=self.registry)
        # (method, route, status) -> (histogram child, counter child): labels() is slower.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            labels = (method, route, str(status))
            children = self._children[key] = (self._latency.labels(*labels),
                                              self._requests.labels(*labels))
        children[0].observe(seconds)
        children[1].inc()

    def count_ingest(self, statuses: Iterable[str],
                     types: Iterable[str | None] | None = None) -> None:
        statuses = list(statuses)
        for status in statuses:
            self._ingest.outcome(status)
        if types is not None:
            for status, type_ in zip(statuses, types, strict=True):
                self._ingest.typed(status, type_)

    def render(self, projections: Iterable[Mapping[str, Any]] = (),
               pipeline: Mapping[str, Any] | None = None) -> str:
        for p in projections:
            name = str(p["name"])
            self._position.labels(name).set(int(p.get("position") or 0))
            self._lag.labels(name).set(int(p.get("lag") or 0))
            self._quarantined.labels(name).set(int(p.get("quarantined") or 0))
            self._held.labels(name).set(int(p.get("held_events") or 0))
        # The pipeline's gauges are written apart from the registry: a stage that could not
        # be read is left out rather than kept at a stale value.
        return generate_latest(self.registry).decode() + "".join(pipeline_lines(pipeline))


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
            lines += [f"# HELP pmo_pipeline_{stage} {help_text}\n",
                      f"# TYPE pmo_pipeline_{stage} gauge\n",
                      f"pmo_pipeline_{stage} {int(pipeline[stage])}\n"]
    return lines


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
            method = scope["method"] if scope["method"] in METHODS else "other"  # any client
            self.metrics.observe_request(method, template, status,
                                         time.perf_counter() - started)
