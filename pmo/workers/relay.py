"""``pmo relay``: publishes every stored event to ``pmo.events`` in store order (see
``consumers.relay``). Run exactly one per event store."""

from __future__ import annotations

import argparse

from consumers.deadletters import producer
from consumers.observe import WorkerMetrics, add_port_argument
from consumers.process import configure_logging, stop_on_signals
from consumers.relay import Relay
from consumers.topics import EVENTS, ensure_topics
from pmo.bootstrap import build_application
from pmo.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    add_port_argument(parser)


def run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging()
    stop = stop_on_signals()
    ensure_topics(settings)
    app = build_application(settings)
    # Larger batches than the producer's default: the relay sends in bulk.
    kafka_producer = producer(settings, batch_size=256 * 1024, linger_ms=10)
    relay = Relay(app.recorder, kafka_producer, settings.topic(EVENTS),
                  idle_s=settings.poll_interval_ms / 1000, mapper=app.mapper)
    metrics = None
    if args.metrics_port is not None:
        def gauges() -> dict[str, float]:
            head = app.recorder.max_notification_id() or 0
            return {"pmo_pipeline_relay": max(head - relay.position, 0),
                    "pmo_relay_position": relay.position,
                    "pmo_relay_published": relay.published}
        metrics = WorkerMetrics("relay", gauges)
        metrics.serve(args.metrics_port)
    try:
        relay.run(stop)
    finally:
        if metrics is not None:
            metrics.close()
        kafka_producer.close()
        app.close()
    return 0
