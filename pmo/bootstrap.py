"""Wiring: builds the parts of the service from ``Settings``, once, explicitly.

Nothing is built at import. Tests call these functions with their own settings
(temporary directories, a test database) and parts.
"""

from __future__ import annotations

from domain.application import PmoApplication
from ingest.service import IngestService, RefusalSink
from pmo.settings import Settings


def build_application(settings: Settings) -> PmoApplication:
    """The event-sourced PMO application on the configured event store."""
    return PmoApplication(env=settings.event_store.event_store_env())


def build_ingest(app: PmoApplication, refusals: RefusalSink | None = None) -> IngestService:
    return IngestService(app, refusals)
