"""``pmo consume NAME... | --all``: Kafka consumers from ``pmo.events`` into the projection store
(see ``consumers.projector``), one consumer group per projection; ``rejections`` feeds the
rejection log from the dead-letter topics. Start several processes of one projection to
split its partitions."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Protocol

from consumers.codec import EventDecoder
from consumers.observe import WorkerMetrics, add_port_argument
from consumers.process import configure_logging, stop_on_signals
from consumers.projector import ProjectionConsumer
from consumers.rejections import RejectionConsumer
from consumers.topics import ensure_topics
from domain.application import PmoApplication
from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections.service import ProjectionService, build_projections

REJECTIONS = RejectionConsumer.name


class Stepper(Protocol):
    def step(self, timeout_ms: int = ...) -> int: ...

    def close(self) -> None: ...


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="projections to feed (as GET /v1/projections lists them), "
                             f"or '{REJECTIONS}'")
    parser.add_argument("--all", action="store_true", help="every projection and rejections")
    add_port_argument(parser)


def run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging()
    stop = stop_on_signals()
    service = build_projections(settings)
    known = [*service.names(), REJECTIONS]
    names = known if args.all else list(dict.fromkeys(args.names))
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        print(f"pmo consume: name one or more of {', '.join(known)}, or --all"
              + (f" (unknown: {', '.join(unknown)})" if unknown else ""), file=sys.stderr)
        return 2
    ensure_topics(settings)
    decoder = EventDecoder.for_pmo()
    consumers: list[Stepper] = [
        RejectionConsumer(settings, service.rejections) if name == REJECTIONS
        else ProjectionConsumer(settings, service.projections[name], decoder)
        for name in names]
    # One thread takes turns; a short poll each keeps every group's heartbeat alive.
    timeout_ms = 100 if len(consumers) == 1 else 20
    metrics = None
    if args.metrics_port is not None:
        metrics = WorkerMetrics("consume", consumer_gauges(settings, service, names))
        for consumer in consumers:
            if isinstance(consumer, ProjectionConsumer):
                consumer.on_applied = metrics.observe_apply  # apply timings per view
        metrics.serve(args.metrics_port)
    try:
        while not stop.is_set():
            for consumer in consumers:
                consumer.step(timeout_ms)
    finally:
        if metrics is not None:
            metrics.close()
        for consumer in consumers:
            consumer.close()
        service.close()
    return 0


def consumer_gauges(settings: Settings, service: ProjectionService,
                    names: list[str]) -> Callable[[], dict[str, float]]:
    """Each fed projection's watermark and its lag behind the event store's head (read
    from the store each time: a scrape sees what every process of the group has done)."""
    app: list[PmoApplication] = []

    def gauges() -> dict[str, float]:
        if not app:  # opened at the first scrape: a consumer needs no event store otherwise
            app.append(build_application(settings))
        head = app[0].recorder.max_notification_id() or 0
        out: dict[str, float] = {}
        for row in service.status(head):
            if row["name"] in names:
                label = f'{{projection="{row["name"]}"}}'
                out[f"pmo_projection_position{label}"] = row["position"]
                out[f"pmo_projection_lag{label}"] = row["lag"]
        return out
    return gauges
