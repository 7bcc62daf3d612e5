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
from pmo.arguments import port
from pmo.bootstrap import build_services
from pmo.http_head import bounded_protocol
from pmo.logs import configure
from pmo.settings import Settings

KEYS_HINT = """\
pmo serve: no API keys are configured, so every request will be answered 401.
  Set PMO_API_KEYS (environment or .env) to a JSON object of key -> roles, e.g.
    export PMO_API_KEYS='{"change-me": ["publisher", "viewer", "auditor", "admin"]}'
  and send 'Authorization: Bearer change-me'."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=port, default=8000, help="port to listen on")
    parser.add_argument("--log-level", default=None,
                        choices=["critical", "error", "warning", "info", "debug"],
                        help="default: PMO_LOG_LEVEL (INFO)")
    access = parser.add_mutually_exclusive_group()
    access.add_argument("--access-log", action="store_true", default=None,
                        help="log every request (off by default, or PMO_ACCESS_LOG=true: "
                        "a line per request costs about a third of the read throughput)")
    access.add_argument("--no-access-log", action="store_false", dest="access_log",
                        help="do not log every request (the default)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.log_level is not None:
        settings = settings.model_copy(update={"log_level": args.log_level.upper()})
    configure(settings)
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
        access_log = settings.access_log if args.access_log is None else args.access_log
        # log_config=None: uvicorn keeps the setup of pmo.logs (timestamps, format).
        uvicorn.run(create_app(services), host=args.host, port=args.port, log_config=None,
                    log_level=settings.log_level.lower(), access_log=access_log,
                    # an open dashboard holds a live stream (GET /v1/stream): stopping the
                    # server waits this long for it, not until the stream ends
                    timeout_graceful_shutdown=5,
                    # httptools reads a request's headers without any bound (pmo.http_head)
                    http=bounded_protocol(settings.max_header_bytes))
    finally:
        if services.runner is not None:
            services.runner.stop()
        close = getattr(services.ingest, "close", None)
        if callable(close):
            close()
    return 0
