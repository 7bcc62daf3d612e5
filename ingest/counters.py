"""Inbound outcomes as prometheus counters: one definition for ``pmo serve`` and the
Kafka workers, so both expose the same metric names and labels."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from ingest.schemas import TYPES

OUTCOMES = ("accepted", "duplicate", "queued", "invalid", "rejected")
# A label per publisher-chosen string would grow the registry without bound.
KNOWN_TYPES = frozenset(TYPES)


class IngestCounters:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._total = Counter("pmo_ingest_events", "Inbound events by outcome.", ("status",),
                              registry=registry)
        self._by_type = Counter(
            "pmo_ingest_events_by_type", "Inbound events by outcome and CloudEvent type "
            "('unknown' when the envelope could not be read).", ("status", "type"),
            registry=registry)
        for status in OUTCOMES:
            self._total.labels(status)  # present at 0 from the start

    def outcome(self, status: str) -> None:
        self._total.labels(status).inc()

    def typed(self, status: str, type_: str | None) -> None:
        self._by_type.labels(status, type_ if type_ in KNOWN_TYPES else "unknown").inc()
