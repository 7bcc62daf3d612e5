"""``/metrics`` and ``/healthz`` of a Kafka worker, on its own port (``--metrics-port``).

A worker has no web framework, and needs none for two read-only paths: a stdlib
``ThreadingHTTPServer`` in a daemon thread answers them. ``/metrics`` renders the
gauges the worker's ``gauges()`` returns at that moment (Prometheus text format,
``name{labels} value``); a gauge that fails to read is left out, never a 500, and
the error is counted in ``pmo_worker_metric_errors_total``. ``/healthz`` is
liveness, as the API's: 200 while the worker's main thread runs (a worker whose
loop fails exits, and its orchestrator restarts it), 503 while it is shutting down.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
Gauges = Mapping[str, float]  # 'name' or 'name{label="v"}' -> value


class WorkerMetrics:
    def __init__(self, worker: str, gauges: Callable[[], Gauges]) -> None:
        self.worker = worker
        self._gauges = gauges
        self._errors = 0
        self._server: ThreadingHTTPServer | None = None

    def healthy(self) -> bool:
        return threading.main_thread().is_alive()

    def render(self) -> str:
        try:
            gauges = dict(self._gauges())
        except Exception:  # a store or the broker is down: say so, keep answering
            log.exception("%s: reading the metrics failed", self.worker)
            self._errors += 1
            gauges = {}
        lines = []
        families: set[str] = set()
        for key, value in sorted(gauges.items()):
            family = key.split("{", 1)[0]
            if family not in families:
                families.add(family)
                lines.append(f"# TYPE {family} gauge")
            lines.append(f"{key} {value:g}")
        lines += ["# TYPE pmo_worker_metric_errors_total counter",
                  f'pmo_worker_metric_errors_total{{worker="{self.worker}"}} {self._errors}',
                  "# TYPE pmo_worker_up gauge",
                  f'pmo_worker_up{{worker="{self.worker}"}} {int(self.healthy())}']
        return "\n".join(lines) + "\n"

    def serve(self, port: int, host: str = "0.0.0.0") -> int:
        """Start answering on ``port`` (0: any free port); returns the port."""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] == "/metrics":
                    self._answer(200, TEXT_FORMAT, owner.render().encode())
                elif self.path.split("?", 1)[0] == "/healthz":
                    ok = owner.healthy()
                    self._answer(200 if ok else 503, "application/json",
                                 b'{"status":"ok"}' if ok else b'{"status":"stalled"}')
                else:
                    self._answer(404, "application/json", b'{"status":"not found"}')

            def _answer(self, status: int, media: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", media)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # scrapes every few seconds would flood the worker's log

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
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


def add_port_argument(parser: object) -> None:
    """``--metrics-port`` (default: none, no server) for a worker's parser."""
    add = getattr(parser, "add_argument")  # noqa: B009 (argparse parser, typed loosely)
    add("--metrics-port", type=int, default=None, metavar="PORT",
        help="serve /metrics and /healthz on this port (default: off)")
