"""Every view reports a watermark: consumers of partitions applying the store's events in
any interleaving (two processes, re-deliveries) show, after every batch, the longest
prefix of the log they have all applied, never the largest position seen."""

from __future__ import annotations

import heapq
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.bench_replay import history, load
from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections.db import Db
from projections.feed import RecordedEvent
from projections.log import read_log
from projections.service import ProjectionService
from storage.urls import StoreUrl
from tests.conftest import drop_postgres_schema, fresh_postgres_schema


@pytest.fixture(scope="module")
def events() -> Iterator[list[RecordedEvent]]:
    with tempfile.TemporaryDirectory() as tmp:
        app = build_application(Settings(data_dir=Path(tmp), _env_file=None))
        load(app, history(projects=6, costs=4))
        yield read_log(app, 0, 10_000)
        app.close()


def prefix(log: list[RecordedEvent], applied: set[int]) -> int:
    reached = 0
    for e in log:
        if e.position not in applied:
            break
        reached = e.position
    return reached


def positions(service: ProjectionService) -> dict[str, int]:
    return {row["name"]: row["position"] for row in service.status(None)}


def play(url: str, log: list[RecordedEvent], data: st.DataObject | None) -> None:
    """Two processes of every projection, three partitions each, polled in turns."""
    def draw(strategy: st.SearchStrategy[int], fallback: int) -> int:
        return data.draw(strategy) if data is not None else fallback

    services = [ProjectionService(Db(StoreUrl.parse(url))) for _ in range(2)]
    parts: list[list[RecordedEvent]] = [[] for _ in range(6)]
    for e in log:
        parts[int(e.oid_hex[:8], 16) % 6].append(e)
    offsets = [0] * 6
    applied: set[int] = set()
    turn = 0
    while any(offsets[p] < len(parts[p]) for p in range(6)):
        process = draw(st.integers(0, 1), turn % 2)
        turn += 1
        polled = []
        for p in range(process, 6, 2):
            start = offsets[p]
            if start and draw(st.integers(0, 3), 1) == 0:  # a re-delivery
                start -= 1
            end = min(start + draw(st.integers(1, 9), 5), len(parts[p]))
            polled.append(parts[p][start:end])
            offsets[p] = max(offsets[p], end)
        batch = list(heapq.merge(*polled, key=lambda e: e.position))
        for projection in services[process].projections.values():
            projection.process(batch, {})
        applied.update(e.position for e in batch)
        expected = prefix(log, applied)
        assert set(positions(services[0]).values()) == {expected}
    assert set(positions(services[1]).values()) == {log[-1].position}
    # Nothing is left held once the chain is whole.
    assert services[0].db.query("SELECT COUNT(*) FROM pv_watermark_held") == [(0,)]
    for service in services:
        service.close()


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.large_base_example])
@given(data=st.data())
def test_two_processes_of_each_view_report_the_applied_prefix(
        events: list[RecordedEvent], tmp_path: Path, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as tmp:
        play(f"sqlite:///{tmp}/views.sqlite", events, data)


def test_watermark_on_postgresql(events: list[RecordedEvent]) -> None:
    url = fresh_postgres_schema()
    try:
        play(url, events, None)
    finally:
        drop_postgres_schema(url)


def test_a_status_read_makes_the_next_view_read_current(events: list[RecordedEvent],
                                                        tmp_path: Path) -> None:
    """"lag 0" then a read: the read must not be bytes cached before the consumer's commit."""
    url = f"sqlite:///{tmp_path / 'views.sqlite'}"
    api = ProjectionService(Db(StoreUrl.parse(url)), refresh_s=3600)
    consumer = ProjectionService(Db(StoreUrl.parse(url)))
    half = len(events) // 2
    for projection in consumer.projections.values():
        projection.process(events[:half], {})
    late = {e.originator_id for e in events[half:]}  # a project the second half changes
    key = next(e.payload["key"] for e in events
               if e.topic == "pmo.project.proposed" and e.originator_id in late)
    before = api.project(key)
    for projection in consumer.projections.values():
        projection.process(events[half:], {})
    assert api.project(key) == before  # cached: the token is re-read only every refresh_s
    assert {r["lag"] for r in api.status(events[-1].position)} == {0}
    assert api.project(key) != before
    api.close()
    consumer.close()
