"""``pmo ingest``: the Kafka worker from ``pmo.inbound`` into the event store (see
``consumers.ingest_worker``). Scale it by starting more: they share the partitions."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Collection

from consumers.deadletters import KafkaRefusalSink, producer
from consumers.ingest_worker import InboundWorker, inbound_consumer
from consumers.observe import Submitter, WorkerMetrics, add_port_argument
from consumers.parking import Parking, ParkingSink, Retrier
from consumers.pipeline import Pipeline
from consumers.process import configure_logging, stop_on_signals
from consumers.topics import ensure_topics
from pmo.bootstrap import build_application, build_ingest
from pmo.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    add_port_argument(parser)


def run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging()
    stop = stop_on_signals()
    ensure_topics(settings)
    app = build_application(settings)
    kafka_producer = producer(settings)
    sink: KafkaRefusalSink = KafkaRefusalSink(kafka_producer, settings)
    metrics = pipeline = None
    if args.metrics_port is not None:
        pipeline = Pipeline(settings, app.recorder)

        def gauges() -> dict[str, float]:
            # The API's figures, measured in the pipeline's order (inbound, then parked):
            # ``inbound`` counts the parked events too, as GET /v1/projections does.
            # Shared for up to 1 s, as the API's: concurrent scrapes ask the broker once.
            assert pipeline is not None
            status = pipeline.recent()
            return {"pmo_pipeline_inbound": status["inbound"],
                    "pmo_pipeline_parked": status["parked"],
                    "pmo_ingest_parked": status["parked"]}
        metrics = WorkerMetrics("ingest", gauges)
    parking_sink: ParkingSink | None = None
    parking = Parking(app.recorder)  # see consumers.parking
    if settings.park_seconds > 0:
        sink = parking_sink = ParkingSink(kafka_producer, settings, parking)
    # Always a Retrier: events parked before a restart with PMO_PARK_SECONDS=0 are then
    # rejected with their reason (out of time), not left parked for good. A parked
    # event's outcome is counted once the Retrier decides it.
    retrier = Retrier(build_ingest(app), sink, parking, settings.park_seconds,
                      settings.max_body_bytes,
                      decided=metrics.count if metrics is not None else None)
    ingest: Submitter = build_ingest(app, sink)
    if metrics is not None:
        undecided: Callable[[], Collection[str]] = frozenset
        if parking_sink is not None:
            undecided = lambda: parking_sink.just_parked  # noqa: E731
        ingest = metrics.submitter(ingest, undecided)  # outcomes by type, store timings
        metrics.serve(args.metrics_port)
    worker = InboundWorker(settings, ingest, sink, inbound_consumer(settings),
                           rejoin=lambda: inbound_consumer(settings))
    try:
        worker.run(stop, retrier.step)
    finally:
        if metrics is not None and pipeline is not None:
            metrics.close()
            pipeline.close()
        worker.close()
        kafka_producer.close()
        app.close()
    return 0
