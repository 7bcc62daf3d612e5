"""``pmo serve``: the API and the whole pipeline in one process.

Embedded (default): the event store and views in SQLite under ``PMO_DATA_DIR``,
and a runner that feeds the views from the store, in a child process of its own
(``pmo.runner_process``; ``PMO_RUNNER_PROCESS=false``: a thread). With
``PMO_KAFKA_BOOTSTRAP`` set, events are queued to Kafka and the workers
(``pmo ingest``, ``pmo relay``, ``pmo consume``) do the rest.
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from api.app import create_app
from pmo.bootstrap import build_services
from pmo.settings import Settings

KEYS_HINT = """\
pmo serve: no API keys are configured, so every request will be answered 401.
  Set PMO_API_KEYS (environment or .env) to a JSON object of key -> roles, e.g.
    export PMO_API_KEYS='{"change-me": ["publisher", "viewer", "auditor", "admin"]}'
  and send 'Authorization: Bearer change-me'."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument("--log-level", default="info",
                        choices=["critical", "error", "warning", "info", "debug"])
    parser.add_argument("--no-access-log", action="store_true",
                        help="do not log every request (for load tests)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.api_keys:
        print(KEYS_HINT, file=sys.stderr)
    services = build_services(settings, runner_process=settings.runner_process)
    if services.runner is not None:
        services.runner.start()
    mode = f"Kafka at {settings.kafka_bootstrap}" if settings.kafka_mode else (
        f"embedded, data in {settings.data_dir}")
    print(f"pmo serve: http://{args.host}:{args.port} ({mode}); OpenAPI at /docs",
          file=sys.stderr, flush=True)
    try:
        uvicorn.run(create_app(services), host=args.host, port=args.port,
                    log_level=args.log_level, access_log=not args.no_access_log,
                    # an open dashboard holds a live stream (GET /v1/stream): stopping the
                    # server waits this long for it, not until the stream ends
                    timeout_graceful_shutdown=5)
    finally:
        if services.runner is not None:
            services.runner.stop()
        close = getattr(services.ingest, "close", None)
        if callable(close):
            close()
    return 0
