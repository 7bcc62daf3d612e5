"""Property: the audit trail that Kafka consumers build, from the store's events spread over
partitions by aggregate, read in any interleaving, in batches of any size, with
re-deliveries and with the partitions split between two consumer processes, is row for
row the trail the embedded runner builds from the store in order."""

from __future__ import annotations

import heapq
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.bench_replay import history, load
from domain.application import PmoApplication
from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections.audit_read import verify
from projections.audit_verify import contract
from projections.db import Db
from projections.feed import RecordedEvent
from projections.log import read_log
from projections.runner import EmbeddedRunner
from projections.service import ProjectionService
from storage.urls import StoreUrl

Store = tuple[PmoApplication, list[RecordedEvent], dict[str, list[Any]]]


def service_on(path: Path) -> ProjectionService:
    return ProjectionService(Db(StoreUrl.parse(f"sqlite:///{path}")))


def trail(service: ProjectionService) -> dict[str, list[Any]]:
    return {t: service.db.query(f"SELECT * FROM {t} ORDER BY position")
            for t in service.audit.tables}


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    with tempfile.TemporaryDirectory() as tmp:
        app = build_application(Settings(data_dir=Path(tmp), _env_file=None))
        load(app, history(projects=8, costs=6))  # a portfolio, a manager, 8 projects: 81 events
        events = read_log(app, 0, 10_000)
        reference = service_on(Path(tmp) / "reference.sqlite")
        EmbeddedRunner(app, reference).catch_up()
        expected = trail(reference)
        reference.close()
        yield app, events, expected
        app.close()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])
@given(data=st.data())
def test_consumers_of_partitions_build_the_embedded_trail(store: Store, data: st.DataObject
                                                           ) -> None:
    app, events, expected = store
    partitions = data.draw(st.integers(1, 4), label="partitions")
    processes = data.draw(st.integers(1, 2), label="processes")
    salt = data.draw(st.integers(0, 999), label="salt")
    logs: list[list[RecordedEvent]] = [[] for _ in range(partitions)]
    for e in events:  # one aggregate's events in one partition, in store order
        logs[(int(e.oid_hex[:8], 16) + salt) % partitions].append(e)
    with tempfile.TemporaryDirectory() as tmp:
        services = [service_on(Path(tmp) / "views.sqlite") for _ in range(processes)]
        offsets = [0] * partitions
        while any(offsets[p] < len(logs[p]) for p in range(partitions)):
            process = data.draw(st.integers(0, processes - 1), label="process")
            mine = [p for p in range(partitions) if p % processes == process]
            polled, tracking = [], {}
            for p in mine:  # one poll: a stretch of each partition it owns, maybe again
                start = offsets[p]
                if start and data.draw(st.booleans(), label="re-delivery"):
                    start -= data.draw(st.integers(1, start), label="back")
                end = min(start + data.draw(st.integers(1, 12), label="batch"), len(logs[p]))
                polled.append(logs[p][start:end])
                tracking[f"pmo.events:{p}"] = offsets[p] = max(offsets[p], end)
            batch = list(heapq.merge(*polled, key=lambda e: e.position))
            services[process].audit.process(batch, tracking)
        got = trail(services[0])
        assert got == expected
        assert services[0].audit.waiting() == 0
        assert contract(verify(services[0].db, app)) == {"ok": True, "checked": len(events)}
        for service in services:
            service.close()
