"""``/metrics`` and ``/healthz`` of a Kafka worker, on its own port (``--metrics-port``).

Each worker has a ``prometheus_client`` registry, scraped in the standard text format
like the API's (``api.metrics``), with the same family names where they mean the same:

- ``pmo_ingest_events_total{status}`` and ``pmo_ingest_events_by_type_total{status,type}``
  (``pmo ingest``: every inbound message's outcome, counted by ``submitter``);
- ``pmo_ingest_store_duration_seconds``: a histogram of the time to decide and store one
  batch; ``pmo_projection_apply_duration_seconds{projection}``: the time to apply one
  batch to a view (``pmo consume``, through ``observe_apply``);
- the gauges the worker's ``gauges()`` returns at each scrape (``pmo_projection_lag``,
  ``pmo_pipeline_relay``...: read from the stores, so a scrape sees every process of a
  group); a gauge that fails to read is left out, never a 500, and the error is counted
  in ``pmo_worker_metric_errors_total``;
- ``pmo_worker_up{worker}``, and the client's process and Python families
  (``process_cpu_seconds_total``, ``process_resident_memory_bytes``, ``python_gc_*``...).

A worker has no web framework, and needs none for two read-only paths: a stdlib
``ThreadingHTTPServer`` in a daemon thread answers them. ``/healthz`` is liveness, as the
API's: 200 while the worker's main thread runs (a worker whose loop fails exits, and its
orchestrator restarts it), 503 while it is shutting down.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ingest.counters import IngestCounters
from ingest.service import Inbound, Result
from pmo.arguments import port

log = logging.getLogger(__name__)
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
Gauges = Mapping[str, float]  # 'name' or 'name{label="v",...}' -> value
_KEY = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
# Seconds: a batch of a few hundred events is stored or applied in milliseconds to seconds.
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                 10.0, 30.0)


class Submitter(Protocol):
    def submit(self, messages: Sequence[Inbound]) -> list[Result]: ...


class _Gauges(Collector):
    """The worker's ``gauges()`` as gauge families, read at each scrape."""

    def __init__(self, owner: WorkerMetrics) -> None:
        self._owner = owner

    def describe(self) -> Iterator[Metric]:
        return iter(())  # unknown until read: the registry must not read them to register

    def collect(self) -> Iterator[Metric]:
        families: dict[str, GaugeMetricFamily] = {}
        for key, value in sorted(self._owner.read_gauges().items()):
            match = _KEY.fullmatch(key)
            if match is None:
                continue
            name, labels = match.group(1), dict(_LABEL.findall(match.group(2) or ""))
            family = families.get(name)
            if family is None:
                family = families[name] = GaugeMetricFamily(
                    name, f"{name} ({self._owner.worker})", labels=sorted(labels))
            family.add_metric([labels[k] for k in sorted(labels)], float(value))
        yield from families.values()
        up = GaugeMetricFamily("pmo_worker_up", "1 while the worker's main thread runs.",
                               labels=["worker"])
        up.add_metric([self._owner.worker], float(self._owner.healthy()))
        yield up


class WorkerMetrics:
    def __init__(self, worker: str, gauges: Callable[[], Gauges] = dict) -> None:
        self.worker = worker
        self._gauges = gauges
        self._server: _BoundedServer | None = None
        self.registry = CollectorRegistry(auto_describe=True)
        # First: a scrape reads the gauges before it renders the count of failed reads.
        self.registry.register(_Gauges(self))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.registry.register(GC_COLLECTOR)
        self._errors = Counter("pmo_worker_metric_errors", "Scrapes where a gauge could "
                               "not be read (a store or the broker down).", ("worker",),
                               registry=self.registry)
        self._errors.labels(worker)
        self._ingest = IngestCounters(self.registry)
        self._store = Histogram("pmo_ingest_store_duration_seconds", "Time to decide and "
                                "store one batch of inbound events.", buckets=BATCH_BUCKETS,
                                registry=self.registry)
        self._apply = Histogram("pmo_projection_apply_duration_seconds", "Time to apply one "
                                "batch of stored events to a view.", ("projection",),
                                buckets=BATCH_BUCKETS, registry=self.registry)

    def healthy(self) -> bool:
        return threading.main_thread().is_alive()

    def read_gauges(self) -> dict[str, float]:
        try:
            return dict(self._gauges())
        except Exception:  # a store or the broker is down: say so, keep answering
            log.exception("%s: reading the metrics failed", self.worker)
            self._errors.labels(self.worker).inc()
            return {}

    def render(self) -> str:
        return generate_latest(self.registry).decode()

    def submitter(self, inner: Submitter,
                  undecided: Callable[[], Collection[str]] = frozenset) -> Submitter:
        """``inner``, its batches timed and its outcomes counted by type. ``undecided``
        names (by origin) the messages of the last batch that have no outcome yet (parked:
        counted once decided, through ``count``), so each message is counted once, with
        the outcome it got."""
        return _Counted(inner, self, undecided)

    def count(self, messages: Sequence[Inbound], results: Sequence[Result],
              undecided: Collection[str] = frozenset()) -> None:
        for message, result in zip(messages, results, strict=True):
            if message.origin in undecided:
                continue
            self._ingest.outcome(result.status)
            self._ingest.typed(result.status,
                               message.event.type if message.event is not None else None)

    def observe_store(self, seconds: float) -> None:
        self._store.observe(seconds)

    def observe_apply(self, projection: str, seconds: float) -> None:
        self._apply.labels(projection).observe(seconds)

    def serve(self, port: int, host: str = "0.0.0.0") -> int:
        """Start answering on ``port`` (0: any free port); returns the port."""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            # A client that stops sending (or never ends its headers) is dropped after
            # this long; without it each one held a thread and a socket for good.
            timeout = CLIENT_TIMEOUT_S

            def do_GET(self) -> None:
                self._get(body=True)

            def do_HEAD(self) -> None:
                self._get(body=False)

            def _get(self, body: bool) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._answer(200, TEXT_FORMAT, owner.render().encode(), body)
                elif path == "/healthz":
                    ok = owner.healthy()
                    self._answer(200 if ok else 503, "application/json",
                                 b'{"status":"ok"}' if ok else b'{"status":"stalled"}', body)
                else:
                    self._answer(404, "application/json", b'{"status":"not found"}', body)

            def _refuse(self) -> None:  # any other method: 405 with Allow, body unread
                self.close_connection = True
                self._answer(405, "application/json", b'{"status":"method not allowed"}',
                             True, [("Allow", "GET, HEAD"), ("Connection", "close")])

            def do_POST(self) -> None:
                self._refuse()

            def do_PUT(self) -> None:
                self._refuse()

            def do_DELETE(self) -> None:
                self._refuse()

            def do_PATCH(self) -> None:
                self._refuse()

            def do_OPTIONS(self) -> None:
                self._refuse()

            def _answer(self, status: int, media: str, payload: bytes, body: bool,
                        extra: Sequence[tuple[str, str]] = ()) -> None:
                self.send_response(status)
                self.send_header("Content-Type", media)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in extra:
                    self.send_header(name, value)
                self.end_headers()
                if body:
                    self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass  # scrapes every few seconds would flood the worker's log

        self._server = _BoundedServer((host, port), Handler, MAX_CLIENTS)
        threading.Thread(target=self._server.serve_forever, name=f"{self.worker}-metrics",
                         daemon=True).start()
        actual: int = self._server.server_address[1]
        log.info("%s: /metrics and /healthz on port %d", self.worker, actual)
        return actual

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


CLIENT_TIMEOUT_S = 5.0  # a scraper sends its request at once
MAX_CLIENTS = 32  # connections served at once; a scraper needs one or two


class _BoundedServer(ThreadingHTTPServer):
    """A thread per connection, as ``ThreadingHTTPServer``, but at most ``max_clients``
    at once: one more is closed at once (a scraper retries). Unbounded, a flood of idle
    connections to the metrics port grew the worker by a thread and a socket each."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 max_clients: int) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(max_clients)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # the thread did not start: its slot is free again
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class _Counted:
    def __init__(self, inner: Submitter, metrics: WorkerMetrics,
                 undecided: Callable[[], Collection[str]]) -> None:
        self._inner = inner
        self._metrics = metrics
        self._undecided = undecided

    def submit(self, messages: Sequence[Inbound]) -> list[Result]:
        started = time.perf_counter()
        results = self._inner.submit(messages)
        self._metrics.observe_store(time.perf_counter() - started)
        self._metrics.count(messages, results, self._undecided())
        return results


def add_port_argument(parser: object) -> None:
    """``--metrics-port`` (default: none, no server) for a worker's parser."""
    add = getattr(parser, "add_argument")  # noqa: B009 (argparse parser, typed loosely)
    add("--metrics-port", type=port, default=None, metavar="PORT",
        help="serve /metrics and /healthz on this port (default: off)")
