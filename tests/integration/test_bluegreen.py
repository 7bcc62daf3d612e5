"""Blue/green rebuilds on real stores (SQLite and PostgreSQL): while a view is rebuilt beside
the live one, every read answers the complete old version or the complete new one; a rebuild
killed half-way leaves the live view intact and is resumed; quarantine follows the swap.

The live view is first damaged on purpose (rows deleted behind the projection's back, as a
fold bug would leave it): the old version then differs from the rebuilt one, so a read of a
partial or blank view, or of a mix, cannot pass for either.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bench.bench_replay import history, load
from domain import commands as c
from domain.application import PmoApplication
from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections import bluegreen
from projections.bluegreen import PROGRESS, next_url
from projections.lists import ProjectQuery
from projections.runner import EmbeddedRunner, rebuild
from projections.service import ProjectionService, build_projections
from tests.integration.test_projection_views import Publisher, make_settings, seed, view
from tests.integration.test_quarantine import cost
from tests.quarantine_support import POISON, BrokenProjects, with_broken_projects

Stores = tuple[PmoApplication, ProjectionService, Settings]
PROJECTS = 380  # x 52 events each: about 20,000 events (100,000 and more: bench_replay)
DAMAGED = ("X0", "X1", "X10")  # in the first page of the list


@pytest.fixture
def stores(store_url: str, tmp_path: Path) -> Iterator[Stores]:
    BrokenProjects.fixed = False
    settings = make_settings(store_url, tmp_path)
    app = build_application(settings)
    load(app, history(PROJECTS, 40))
    service = build_projections(settings)
    EmbeddedRunner(app, service).catch_up()
    yield app, service, settings
    service.close()
    app.close()


def reads(service: ProjectionService) -> dict[str, Any]:
    """What a dashboard reads: through the view caches, and the raw row count."""
    return {
        "portfolio": service.portfolio("P"),
        "project": service.project("X1"),
        "list": service.project_list(ProjectQuery(portfolio="P", limit=50)),
        "rows": service.db.query("SELECT COUNT(*) FROM pv_projects")[0][0],
    }


def damage(service: ProjectionService, keys: tuple[str, ...] = DAMAGED) -> None:
    with service.db.transaction() as tx:
        for key in keys:
            tx.execute("DELETE FROM pv_projects WHERE key = ?", (key,))
    service.invalidate()


def read_during(service: ProjectionService, done: threading.Event,
                answers: list[dict[str, Any]]) -> threading.Thread:
    def loop() -> None:
        while not done.is_set():
            answers.append(reads(service))
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def assert_each_before_or_after(answers: list[dict[str, Any]], before: dict[str, Any],
                                after: dict[str, Any]) -> None:
    assert answers
    for answer in answers:
        for key, value in answer.items():
            assert value in (before[key], after[key]), (key, value)


def wait(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_reads_during_a_runner_rebuild_see_the_old_or_the_new_version(stores: Stores) -> None:
    app, service, _ = stores
    assert (app.recorder.max_notification_id() or 0) >= 19_000
    after = reads(service)
    damage(service)
    before = reads(service)
    assert all(before[k] != after[k] for k in ("portfolio", "list", "rows"))
    assert before["project"] != after["project"]  # X1 is gone: a 404 before
    runner = EmbeddedRunner(app, service, batch_size=500)
    answers: list[dict[str, Any]] = []
    done = threading.Event()
    reader = read_during(service, done, answers)
    progress: list[dict[str, Any]] = []
    runner.start()
    try:
        runner.rebuild("projects")
        def swapped() -> bool:
            row = next(r for r in runner.status() if r["name"] == "projects")
            if row["state"] == "rebuilding":
                progress.append(row)
            return row["state"] == "live" and reads(service)["rows"] == after["rows"]
        wait(swapped)
    finally:
        done.set()
        reader.join()
        runner.stop()
    assert_each_before_or_after(answers, before, after)
    assert any(a == before for a in answers)  # the old version was served meanwhile
    assert reads(service) == after
    assert progress and all(r["position"] == r["rebuild"]["head"] for r in progress)
    assert max(r["rebuild"]["position"] for r in progress) > 0
    assert not Path(next_url(service.db.url, "next_projects").path).exists() or \
        service.db.kind == "postgresql"


def test_reads_from_another_process_during_pmo_replay(stores: Stores) -> None:
    app, service, settings = stores
    after = reads(service)
    damage(service)
    before = reads(service)
    reader_service = build_projections(settings)  # the API's: its own connections and cache
    answers: list[dict[str, Any]] = []
    done = threading.Event()
    reader = read_during(reader_service, done, answers)
    try:
        replayer = build_projections(settings)
        rebuild(app, replayer, ["projects", "portfolios"], batch_size=500)
        replayer.close()
        wait(lambda: reads(reader_service) == after, timeout=5)  # the token is re-read
    finally:
        done.set()
        reader.join()
    assert_each_before_or_after(answers, before, after)
    assert answers[0] == before
    reader_service.close()
    states = {r["name"]: r["state"] for r in service.status(None)}
    assert set(states.values()) == {"live"}


def test_a_killed_replay_leaves_the_live_view_and_resumes(stores: Stores, tmp_path: Path
                                                           ) -> None:
    app, service, settings = stores
    after = reads(service)
    damage(service)
    before = reads(service)
    env = {"PMO_DATA_DIR": str(settings.data_dir),
           "PMO_EVENT_STORE_URL": str(settings.event_store_url),
           "PMO_PROJECTION_STORE_URL": str(settings.projection_store_url)}
    process = subprocess.Popen([sys.executable, "-m", "pmo.cli", "replay", "--projection",
                                "projects", "--batch-size", "20"], env={**os.environ, **env},
                               stdout=subprocess.DEVNULL, stderr=(tmp_path / "err").open("w"),
                               cwd=tmp_path)
    try:
        def started() -> bool:
            rows = service.db.query("SELECT value FROM pv_tracking WHERE projection = ? AND "
                                    "key = ?", ("projects", PROGRESS))
            return bool(rows) and int(rows[0][0]) > 0
        wait(started)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    service.invalidate()
    assert reads(service) == before  # the live version, untouched
    status = next(r for r in service.status(None) if r["name"] == "projects")
    assert status["state"] == "rebuilding" and status["rebuild"]["position"] > 0
    resumed_from = status["rebuild"]["position"]
    positions: list[int] = []
    rebuild(app, service, ["projects"], progress=positions.append)
    assert positions[0] >= resumed_from  # resumed, not started over
    assert reads(service) == after
    assert next(r for r in service.status(None) if r["name"] == "projects")["state"] == "live"


def test_quarantine_follows_the_swap(store_url: str, tmp_path: Path) -> None:
    BrokenProjects.fixed = False
    settings = make_settings(store_url, tmp_path)
    app = build_application(settings)
    service = build_projections(settings)
    try:
        publish = Publisher(app)
        seed(publish)
        publish(cost("A", "5", POISON), cost("A", "7", "after"))
        broken = with_broken_projects(service)
        runner = EmbeddedRunner(app, service)
        runner.catch_up()
        assert [e.key for e in service.quarantined("projects", None, 10)] == ["A"]
        stuck = view(service.project("A"))["actual_cost"]
        BrokenProjects.fixed = True  # the fix is deployed; the live view keeps its quarantine
        runner = EmbeddedRunner(app, service, batch_size=5)  # a rebuild of several steps
        runner.rebuild("projects")
        runner.run_once()  # starts the rebuild: the live version is still the one served
        assert next(r for r in runner.status() if r["name"] == "projects")["rebuild"][
            "position"] == 5
        assert [e.key for e in service.quarantined("projects", None, 10)] == ["A"]
        runner.catch_up()
        assert service.quarantined("projects", None, 10) == []
        assert service.db.query("SELECT COUNT(*) FROM pv_quarantine_held")[0][0] == 0
        assert view(service.project("A"))["actual_cost"] == "212.00" != stuck
        assert view(service.project("A"))["quarantined"] is False
        BrokenProjects.fixed = False  # and a rebuild by the broken version quarantines again
        publish(c.RecordCost("B", Decimal("1"), "EUR", date(2026, 2, 5), "labour", "b1"))
        rebuild(app, service, ["projects"])
        assert [e.key for e in service.quarantined("projects", None, 10)] == ["A"]
        assert broken.name == "projects"
    finally:
        service.close()
        app.close()



def test_a_rebuild_superseded_by_another_is_dropped_not_swapped(store_url: str,
                                                                 tmp_path: Path) -> None:
    settings = make_settings(store_url, tmp_path)
    app = build_application(settings)
    service = build_projections(settings)
    try:
        publish = Publisher(app)
        seed(publish)
        EmbeddedRunner(app, service).catch_up()
        expected = reads_small(service)
        first, second = (bluegreen.NextVersion(service.projects, tag) for tag in ("a", "b"))
        for v in (first, second):
            v.open(resume=False)
            bluegreen.build(app, [v], 7)
        publish(cost("A", "1", "late"))  # the live version moves on: the swap catches up
        EmbeddedRunner(app, service).catch_up()
        moved = reads_small(service)
        assert moved != expected
        damage(service, ("B",))
        assert bluegreen.swap([first], bluegreen.store_catch_up(app)) is True
        assert reads_small(service) == moved
        damage(service, ("B",))  # what a second swap would undo
        damaged = reads_small(service)
        assert bluegreen.swap([second], bluegreen.store_catch_up(app)) is False
        assert reads_small(service) == damaged
        if service.db.kind == "sqlite":
            assert not any(Path(v.url.path).exists() for v in (first, second))
        else:
            schemas = {r[0] for r in service.db.query(
                "SELECT schema_name FROM information_schema.schemata")}
            assert not {first.url.schema, second.url.schema} & schemas
    finally:
        service.close()
        app.close()


def reads_small(service: ProjectionService) -> tuple[Any, ...]:
    return (service.project("A"), service.project("B"), service.portfolio("PF"),
            service.db.query("SELECT COUNT(*) FROM pv_projects")[0][0])
