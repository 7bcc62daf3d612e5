"""Wiring: builds the parts of the service from ``Settings``, once, explicitly.

Nothing is built at import. Tests call these functions with their own settings
(temporary directories, a test database) and parts.
"""

from __future__ import annotations

import gc

from api.deps import Runner, Services
from domain.application import PmoApplication
from ingest.service import IngestService, RefusalSink
from pmo.runner_process import RunnerProcess
from pmo.settings import Settings
from projections.runner import EmbeddedRunner
from projections.service import ProjectionService, build_projections
from storage.transcoder import FastJSONTranscoder

# A writer keeps a large, long-lived heap (the aggregate cache, up to 20,000 aggregates)
# and allocates a few dozen objects per event. With CPython's default gen-0 threshold
# (700) a collection runs every ~20 events and keeps promoting survivors, so the older
# generations, cache included, are walked again and again: ~15% of ingest time
# (bench_ingest). Young collections every 50,000 allocations still collect cycles.
GC_THRESHOLD = (50_000, 10, 10)


def tune_gc() -> None:
    """Raise the collector's gen-0 threshold for a long-running writer (never lowers it)."""
    if gc.get_threshold()[0] < GC_THRESHOLD[0]:
        gc.set_threshold(*GC_THRESHOLD)


def build_application(settings: Settings) -> PmoApplication:
    """The event-sourced PMO application on the configured event store."""
    tune_gc()
    return PmoApplication(env=settings.event_store.event_store_env(),
                          transcoder=FastJSONTranscoder())


def build_ingest(app: PmoApplication, refusals: RefusalSink | None = None) -> IngestService:
    return IngestService(app, refusals)


def build_services(settings: Settings, *, runner_process: bool = False) -> Services:
    """Everything the API and the CLI use, for the configured mode.

    Embedded: ingest stores directly, refusals go to the rejections log, and an
    ``EmbeddedRunner`` (started by the caller) feeds the views from the store: a
    thread of this process, or with ``runner_process`` a child process (``pmo serve``).
    Kafka mode (``PMO_KAFKA_BOOTSTRAP``): ingest queues to ``pmo.inbound``; the
    workers store, dead-letter and project, so there is no runner here.
    """
    app = build_application(settings)
    projections = build_projections(settings)
    if settings.kafka_mode:
        # Imported only in Kafka mode: the embedded default needs no Kafka client.
        from consumers.ingestor import KafkaIngestor  # noqa: PLC0415
        from consumers.parking import Parking  # noqa: PLC0415
        from consumers.pipeline import Pipeline  # noqa: PLC0415

        return Services(settings, app, KafkaIngestor.from_settings(settings), projections,
                        extras={"pipeline": Pipeline(settings, app.recorder),
                                "parking": Parking(app.recorder)})
    runner: Runner
    if runner_process:
        runner = RunnerProcess(settings, app, projections)
    else:
        runner = build_embedded(settings, app, projections)
    return Services(settings, app, build_ingest(app, projections.rejections), projections,
                    runner)


def build_embedded(settings: Settings, app: PmoApplication,
                   projections: ProjectionService) -> EmbeddedRunner:
    """The runner that polls the event store and feeds every projection (not started)."""
    return EmbeddedRunner(app, projections, poll_interval_s=settings.poll_interval_ms / 1000)
