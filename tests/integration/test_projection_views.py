"""Projections on real stores (SQLite and PostgreSQL): views, restart, re-delivery, as-of."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from domain import commands as c
from domain.application import PmoApplication
from domain.values import Colour, Envelope, PmoType
from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections import asof
from projections.audit import UNLINKED
from projections.audit_read import verify
from projections.audit_verify import contract
from projections.folds import fold_project
from projections.lists import ProjectQuery
from projections.log import read_log
from projections.runner import EmbeddedRunner
from projections.service import ProjectionService, build_projections
from projections.views import project_view

Stores = tuple[PmoApplication, ProjectionService, Settings]


def make_settings(store_url: str, tmp_path: Path) -> Settings:
    projection_url = (store_url if store_url.startswith("postgresql")
                      else f"sqlite:///{tmp_path / 'projections.sqlite'}")
    return Settings(data_dir=tmp_path / "data", event_store_url=store_url,
                    projection_store_url=projection_url, _env_file=None)


@pytest.fixture
def stores(store_url: str, tmp_path: Path) -> Iterator[Stores]:
    settings = make_settings(store_url, tmp_path)
    app = build_application(settings)
    service = build_projections(settings)
    yield app, service, settings
    service.close()
    app.close()


class Publisher:
    def __init__(self, app: PmoApplication) -> None:
        self.app = app
        self.n = 0

    def __call__(self, *commands: c.Command) -> None:
        items = []
        for command in commands:
            self.n += 1
            items.append((Envelope("urn:test", f"m{self.n}", "tester", datetime.now(UTC)),
                          command))
        outcomes = self.app.record(items)
        assert all(o.status == "accepted" for o in outcomes), outcomes


def seed(publish: Publisher) -> None:
    publish(c.OpenPortfolio("PF", "Growth", PmoType.DIRECTIVE, "EUR", Decimal("1000000"), "Olga"),
            c.SetObjective("PF", "OBJ", "Grow", Decimal("0.5")),
            c.RegisterManager("M1", "Mia", 3), c.LaunchProgram("PG", "PF", "Platform"))
    for key, budget in (("A", "1000"), ("B", "3000")):
        publish(c.ProposeProject(key, "PF", f"Project {key}", "COO", Decimal(budget),
                                 date(2026, 1, 1), date(2026, 12, 31), program_id="PG",
                                 objectives=()),
                c.ApproveProject(key, Decimal(budget), "board"), c.AssignManager(key, "M1"),
                c.StartProject(key, date(2026, 1, 2)))
    publish(c.RecordCost("A", Decimal("100.25"), "EUR", date(2026, 2, 1), "labour", "i1"),
            c.RecordCost("A", Decimal("99.75"), "EUR", date(2026, 2, 2), "labour", "i2"),
            c.ReportStatus("A", Colour.RED, Colour.GREEN, Colour.RED, Colour.AMBER,
                           Decimal("10"), "late"),
            c.ProposeProject("C", "PF", "Project C", "CFO", Decimal("50"), date(2026, 1, 1),
                             date(2026, 6, 30)))


def view(body: bytes | None) -> dict[str, Any]:
    assert body is not None
    result: dict[str, Any] = orjson.loads(body)
    return result


def test_views_follow_the_store(stores: Stores) -> None:
    app, service, _ = stores
    seed(Publisher(app))
    EmbeddedRunner(app, service).catch_up()
    project = view(service.project("A"))
    assert (project["state"], project["actual_cost"], project["approved_budget"]) == (
        "active", "200.00", "1000")
    assert project["earned_value"] == "100.00" and project["cpi"] == 0.5
    assert project["health"]["overall"] == "red" and project["manager_id"] == "M1"
    portfolio = view(service.portfolio("PF"))
    assert portfolio["approved_budget"] == "4000" and portfolio["actual_cost"] == "200.00"
    assert portfolio["projects_by_state"] == {"proposed": 1, "approved": 0, "rejected": 0,
                                              "active": 2, "on_hold": 0, "completed": 0,
                                              "cancelled": 0}
    assert portfolio["projects_by_health"] == {"green": 0, "amber": 0, "red": 1, "unknown": 1}
    assert view(service.program("PG"))["projects"] == ["A", "B"]
    manager = view(service.manager("M1"))
    assert (manager["active_projects"], manager["capacity"], manager["projects"]) == (
        2, 3, ["A", "B"])
    assert service.project("nope") is None and service.portfolio("nope") is None


def test_restart_resumes_from_tracking_without_double_counting(stores: Stores) -> None:
    app, service, settings = stores
    publish = Publisher(app)
    seed(publish)
    EmbeddedRunner(app, service).catch_up()
    publish(c.RecordCost("B", Decimal("1.50"), "EUR", date(2026, 3, 1), "labour", "i3"))
    service.close()
    restarted = build_projections(settings)
    runner = EmbeddedRunner(app, restarted)
    assert runner.catch_up() == 1  # only the new event
    assert view(restarted.portfolio("PF"))["actual_cost"] == "201.50"
    assert restarted.audit.count() == app.recorder.max_notification_id()
    restarted.close()


def test_redelivered_events_are_skipped(stores: Stores) -> None:
    app, service, _ = stores
    seed(Publisher(app))
    events = read_log(app, 0, 1000)
    for name, projection in service.projections.items():
        projection.process(events, {"pmo.events:0": 10})
        projection.process(events[5:], {"pmo.events:0": 20})  # a re-delivery after a crash
        assert projection.tracking()["pmo.events:0"] == 20, name
    assert view(service.project("A"))["actual_cost"] == "200.00"
    assert service.audit.count() == len(events)
    assert contract(verify(service.db, app)) == {"ok": True, "checked": len(events)}


def test_audit_chains_out_of_order_deliveries_in_store_order(stores: Stores) -> None:
    app, service, _ = stores
    seed(Publisher(app))
    events = read_log(app, 0, 1000)
    shuffled = events[:]
    random.Random(7).shuffle(shuffled)
    for start in range(0, len(shuffled), 4):  # as if from several lagging partitions
        batch = shuffled[start:start + 4]
        service.audit.process(batch, {"p": start})
        status = {s["name"]: s for s in service.status(None)}
        held = service.db.query(f"SELECT MIN(position) {UNLINKED}")[0][0]
        assert held is None or status["audit"]["position"] < held  # never past a gap
        assert service.audit.count() + service.audit.waiting() == len(set(
            e.position for e in shuffled[:start + 4]))  # every row kept, chained or waiting
    assert contract(verify(service.db, app)) == {"ok": True, "checked": len(events)}
    assert service.audit.waiting() == 0


def test_as_of_answers_what_was_recorded_then(stores: Stores) -> None:
    app, service, _ = stores
    publish = Publisher(app)
    seed(publish)
    runner = EmbeddedRunner(app, service)
    runner.catch_up()
    then = datetime.now(UTC)
    before = {kind: view(getattr(service, kind)(key)) for kind, key in (
        ("project", "A"), ("portfolio", "PF"), ("program", "PG"), ("manager", "M1"))}
    time.sleep(0.01)
    publish(c.RecordCost("A", Decimal("5"), "EUR", date(2026, 3, 1), "labour", "i9"),
            c.CompleteProject("B", date(2026, 3, 1)))
    runner.catch_up()
    assert view(service.project("A"))["actual_cost"] == "205.00"
    for kind, key in (("project", "A"), ("portfolio", "PF"), ("program", "PG"),
                      ("manager", "M1")):
        past = view(service.as_of(app, kind, key, then))
        assert past.pop("as_of") == then.isoformat()
        assert past == before[kind], kind
    assert service.as_of(app, "project", "A", datetime(2000, 1, 1, tzinfo=UTC)) is None


def test_project_list_filters_sorts_and_pages(stores: Stores) -> None:
    app, service, _ = stores
    seed(Publisher(app))
    EmbeddedRunner(app, service).catch_up()

    def page(**kwargs: Any) -> dict[str, Any]:
        return orjson.loads(service.project_list(ProjectQuery(**kwargs)))  # type: ignore[no-any-return]

    assert [p["project_id"] for p in page(state="active")["items"]] == ["A", "B"]
    assert [p["project_id"] for p in page(health="unknown")["items"]] == ["B", "C"]
    assert [p["project_id"] for p in page(sort="-approved_budget")["items"]] == ["B", "A", "C"]
    assert [p["project_id"] for p in page(q="project c")["items"]] == ["C"]
    first = page(limit=2, sort="-name")
    assert [p["project_id"] for p in first["items"]] == ["C", "B"]
    rest = page(limit=2, sort="-name", cursor=first["next_cursor"])
    assert [p["project_id"] for p in rest["items"]] == ["A"] and rest["next_cursor"] is None


def test_running_runner_gives_read_your_writes(stores: Stores) -> None:
    app, service, _ = stores
    publish = Publisher(app)
    runner = EmbeddedRunner(app, service, poll_interval_s=5)  # only wake() can make it quick
    runner.start()
    try:
        seed(publish)
        began = time.monotonic()
        runner.wake()
        assert runner.wait_for(app.recorder.max_notification_id() or 0, timeout=2)
        assert time.monotonic() - began < 0.5
        assert view(service.project("A"))["actual_cost"] == "200.00"
        status = {s["name"]: s for s in runner.status()}
        assert set(status) == {"portfolios", "projects", "programs", "managers", "audit"}
        assert all(s["lag"] == 0 and s["state"] == "live" for s in status.values())
    finally:
        runner.stop()


def test_as_of_shortcuts_equal_the_plain_fold_of_the_stored_events(stores: Stores) -> None:
    app, service, _ = stores
    publish = Publisher(app)
    seed(publish)
    for n in range(0, 150, 50):  # past the doc snapshot at version 100
        publish(*(c.RecordCost("A", Decimal("1.01"), "EUR", date(2026, 3, 1), "x", f"r{n + i}")
                  for i in range(50)))
    EmbeddedRunner(app, service).catch_up()
    assert service.db.query("SELECT COUNT(*) FROM pv_project_snapshots")[0][0] == 1
    for at in (datetime.now(UTC), datetime.fromisoformat(
            view(service.project("A"))["updated_at"]) - timedelta(microseconds=1)):
        plain = asof.doc_at(app, "project", "A", at, fold_project)
        assert plain is not None
        assert asof.project(app, service.projects, "A", at) == project_view(plain, at.date())
        assert asof.portfolio(app, service.projects, "PF", at, service.portfolios) == \
            asof.portfolio(app, service.projects, "PF", at)


def test_runner_surfaces_a_failing_batch_and_recovers(stores: Stores) -> None:
    app, service, _ = stores
    runner = EmbeddedRunner(app, service, poll_interval_s=0.01)
    with service.db.transaction() as tx:
        tx.execute("DROP TABLE pv_programs")  # the store breaks under the runner
    runner.start()
    try:
        seed(Publisher(app))
        runner.wake()
        deadline = time.monotonic() + 5
        while runner.error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert runner.error is not None and "pv_programs" in runner.error
        assert all("error" in s for s in runner.status())
        assert service.audit.count() == 0  # the failed batch committed nothing, anywhere
        service.programs.create_tables()  # repaired: the retry goes through
        assert runner.wait_for(app.recorder.max_notification_id() or 0, timeout=10)
        deadline = time.monotonic() + 5
        while runner.error is not None and time.monotonic() < deadline:
            time.sleep(0.01)  # cleared once the loop sees its batch through
        assert runner.error is None
        assert view(service.program("PG"))["projects"] == ["A", "B"]
    finally:
        runner.stop()
