"""A manager's view does not depend on whether the manager's registration or an
assignment naming it came first (issue #10: Kafka partitions deliver either way).

A supportive PMO accepts an assignment to a manager not registered yet, and the manager
aggregate then never records it; the view counts the projects' own figures instead.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from domain import commands as c
from domain.application import PmoApplication
from domain.values import PmoType
from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections.runner import EmbeddedRunner, rebuild
from projections.service import ProjectionService, build_projections
from tests.integration.test_projection_views import Publisher

Stores = tuple[PmoApplication, ProjectionService]




@pytest.fixture
def two_stores(tmp_path: Path) -> Iterator[tuple[Stores, Stores]]:
    opened = []
    for name in ("in_order", "overtaken"):
        base = tmp_path / name
        settings = Settings(data_dir=base / "data",
                            event_store_url=f"sqlite:///{base / 'events.sqlite'}",
                            projection_store_url=f"sqlite:///{base / 'views.sqlite'}",
                            _env_file=None)
        base.mkdir()
        opened.append((build_application(settings), build_projections(settings)))
    yield opened[0], opened[1]
    for app, service in opened:
        service.close()
        app.close()


def load(app: PmoApplication, registered_first: bool) -> Publisher:
    """M1 holds A (active) and D (proposed); B is completed, C moved on to M2."""
    publish = Publisher(app)
    publish(c.OpenPortfolio("PF", "Growth", PmoType.SUPPORTIVE, "EUR", Decimal("100000"),
                            "Olga"), c.RegisterManager("M2", "Max", 2))
    for key in ("A", "B", "C", "D"):
        publish(c.ProposeProject(key, "PF", f"Project {key}", "COO", Decimal("1000"),
                                 date(2026, 1, 1), date(2026, 12, 31), objectives=()))
    for key in ("A", "B", "C"):
        publish(c.ApproveProject(key, Decimal("1000"), "board"))
    register = c.RegisterManager("M1", "Mia", 4)
    if registered_first:
        publish(register)
    publish(c.AssignManager("A", "M1"), c.AssignManager("B", "M1"),
            c.AssignManager("C", "M1"))
    if not registered_first:  # the assignments overtook the registration
        publish(register)
    publish(c.AssignManager("D", "M1"), c.StartProject("A", date(2026, 1, 2)),
            c.StartProject("B", date(2026, 1, 2)), c.CompleteProject("B", date(2026, 6, 1)),
            c.AssignManager("C", "M2"))
    return publish


def body(raw: bytes | None) -> dict[str, Any]:
    assert raw is not None
    view: dict[str, Any] = orjson.loads(raw)
    view.pop("version")  # the manager aggregate's own count of events: it does differ
    view.pop("as_of", None)
    view.pop("valid_at", None)
    return view


def test_manager_view_is_the_same_whichever_came_first(two_stores: tuple[Stores, Stores]) -> None:
    (app1, views1), (app2, views2) = two_stores
    publishers = [load(app1, registered_first=True), load(app2, registered_first=False)]
    for app, service in two_stores:
        EmbeddedRunner(app, service).catch_up()
    live = [body(s.manager("M1")) for _, s in two_stores]
    assert live[0] == live[1]
    assert (live[0]["projects"], live[0]["active_projects"], live[0]["utilisation"],
            live[0]["completed_projects"]) == (["A", "D"], 2, 0.5, 1)
    assert body(views1.manager("M2"))["projects"] == body(views2.manager("M2"))["projects"] == ["C"]

    then = datetime.now(UTC)
    time.sleep(0.01)
    for publish in publishers:  # later events must not change the answers as of ``then``
        publish(c.CompleteProject("A", date(2026, 7, 1)))
    for app, service in two_stores:
        EmbeddedRunner(app, service).catch_up()
    past = [body(s.as_of(a, "manager", "M1", then)) for a, s in two_stores]
    assert past == live
    valid = [body(s.valid_at(a, "manager", "M1", then)) for a, s in two_stores]
    assert valid == live
    now = [body(s.manager("M1")) for _, s in two_stores]
    assert now[0] == now[1] and now[0]["projects"] == ["D"] and now[0]["active_projects"] == 1

    for app, service in two_stores:  # a replay from the store answers the same
        rebuild(app, service)
        assert body(service.manager("M1")) == now[0]
        assert body(service.as_of(app, "manager", "M1", then)) == live[0]


def test_a_projects_view_without_the_managers_table_is_rebuilt(
        two_stores: tuple[Stores, Stores], tmp_path: Path) -> None:
    (app, service), _ = two_stores
    load(app, registered_first=False)
    EmbeddedRunner(app, service).catch_up()
    want = body(service.manager("M1"))
    with service.db.transaction() as tx:  # the layout of before #10's manager fix
        tx.execute("DROP TABLE pv_project_managers")
    service.close()
    settings = Settings(data_dir=tmp_path / "in_order" / "data",
                        event_store_url=f"sqlite:///{tmp_path / 'in_order' / 'events.sqlite'}",
                        projection_store_url=f"sqlite:///{tmp_path / 'in_order' / 'views.sqlite'}",
                        _env_file=None)
    reopened = build_projections(settings)
    try:
        assert reopened.db.columns("pv_project_managers")
        assert reopened.projects.tracking() == {} and reopened.managers.tracking() != {}
        EmbeddedRunner(app, reopened).catch_up()
        assert body(reopened.manager("M1")) == want
        assert body(reopened.as_of(app, "manager", "M1", datetime.now(UTC))) == want
    finally:
        reopened.close()
