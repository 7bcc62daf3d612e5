"""Reads render any stored value (issue 9): a figure a view cannot compute is null with a reason.

The events are written straight into the real store (SQLite and PostgreSQL) through the
domain's own event classes, bypassing ingest and the commands' checks, as an older version
that accepted ``"approved_budget": "1e27"`` (or a manager of capacity 0) would have stored
them. Every view, list and as-of read must still answer 200.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from domain.manager import Manager
from domain.portfolio import Portfolio
from domain.program import Program
from domain.project import Project
from domain.values import Colour, PmoType
from pmo.bootstrap import build_services
from pmo.settings import Settings
from tests.e2e.conftest import AUDIT, KEYS, VIEW
from tests.old_writer import OldWriter

HUGE = Decimal("1e27")  # rounding it to cents needs 30 digits: beyond Decimal's 28


@pytest.fixture
def client(store_url: str, tmp_path: Path) -> Iterator[TestClient]:
    projection_url = (store_url if store_url.startswith("postgresql")
                      else f"sqlite:///{tmp_path / 'projections.sqlite'}")
    settings = Settings(data_dir=tmp_path / "data", event_store_url=store_url,
                        projection_store_url=projection_url, api_keys=KEYS,
                        poll_interval_ms=5, _env_file=None)  # type: ignore[call-arg]
    services = build_services(settings)
    old = OldWriter()
    folio = old.create(Portfolio, Portfolio.Opened, "PF-OLD", name="Old", owner="O",
                       pmo_type=PmoType("controlling"), currency="EUR",
                       budget_envelope=Decimal("1e30"))
    old.then(folio, Portfolio.ObjectiveSet, objective_id="OB", title="Grow",
             weight=Decimal("0.5"))
    program = old.create(Program, Program.Launched, "PG-OLD", portfolio_id="PF-OLD",
                         name="Prog", manager_id=None)
    manager = old.create(Manager, Manager.Registered, "M-ZERO", name="Zed", capacity=0,
                         grade=None)
    projects = []
    for key, budget in (("X-HUGE", HUGE), ("X-DONE", HUGE), ("X-OK", Decimal("1000.00"))):
        p = old.create(Project, Project.Proposed, key, portfolio_id="PF-OLD",
                       program_id="PG-OLD", name=key, sponsor="S", budget_requested=budget,
                       planned_start=date(2020, 1, 1), planned_finish=date(2021, 1, 1),
                       objectives=[{"objective_id": "OB", "contribution": Decimal("1")}],
                       priority=None)
        old.then(p, Project.Approved, approved_budget=budget, approver="board")
        old.then(folio, Portfolio.BudgetCommitted, project_id=key, amount=budget)
        old.then(p, Project.ManagerAssigned, manager_id="M-ZERO")
        old.then(manager, Manager.ProjectAssigned, project_id=key)
        old.then(p, Project.Started, started_on=date(2020, 1, 2))
        old.then(p, Project.CostRecorded, amount=Decimal("10.00"), currency="EUR",
                 incurred_on=date(2020, 2, 1), category="labour", reference="r")
        old.then(p, Project.StatusReported, overall=Colour("green"), scope=Colour("green"),
                 schedule=Colour("green"), budget=Colour("green"),
                 percent_complete=Decimal("33.3"), summary="ok",
                 status_date=date(2020, 3, 1))
        projects.append(p)
    old.then(projects[1], Project.Completed, finished_on=date(2021, 1, 1), outcome=None)
    services.app.save(folio, program, manager, *projects)
    assert services.runner is not None
    services.runner.start()
    top = services.app.recorder.max_notification_id() or 0
    assert services.runner.wait_for(top, timeout=30)
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        yield client
    services.close()


READS = ["/v1/portfolios", "/v1/portfolios/PF-OLD", "/v1/projects", "/v1/projects/X-HUGE",
         "/v1/projects/X-DONE", "/v1/projects/X-OK", "/v1/programs/PG-OLD", "/v1/managers",
         "/v1/managers/M-ZERO", "/v1/projects?sort=-approved_budget", "/v1/projects?q=x",
         "/v1/projects/X-HUGE/history", "/v1/audit", "/v1/audit/export?format=csv"]
AS_OF = ["/v1/portfolios/PF-OLD", "/v1/projects/X-HUGE", "/v1/programs/PG-OLD",
         "/v1/managers/M-ZERO"]


def test_every_read_answers_200_over_values_an_old_version_stored(client: TestClient) -> None:
    later = "?as_of=" + datetime.now(UTC).isoformat().replace("+00:00", "Z")
    for path in READS + [p + later for p in AS_OF]:
        response = client.get(path, headers=AUDIT)
        assert response.status_code == 200, (path, response.text)


def test_a_figure_that_cannot_be_computed_is_null_with_its_reason(client: TestClient) -> None:
    huge = client.get("/v1/projects/X-HUGE", headers=VIEW).json()
    assert huge["approved_budget"] == str(HUGE)  # the stored value is shown as stored
    assert huge["earned_value"] is None and huge["planned_value"] is None
    assert huge["cpi"] is None and huge["spi"] is None
    assert set(huge["unavailable"]) >= {"earned_value", "planned_value", "cpi", "spi"}
    assert all(r.startswith("not computable") for r in huge["unavailable"].values())

    ok = client.get("/v1/projects/X-OK", headers=VIEW).json()
    assert ok["earned_value"] == "333.00" and "unavailable" not in ok  # untouched by the others

    folio = client.get("/v1/portfolios/PF-OLD", headers=VIEW).json()
    assert folio["earned_value"] is None and "earned_value" in folio["unavailable"]
    assert folio["actual_cost"] == "30.00"  # what can be computed still is
    assert folio["projects_by_state"]["active"] == 2

    manager = client.get("/v1/managers/M-ZERO", headers=VIEW).json()
    assert manager["utilisation"] is None and "utilisation" in manager["unavailable"]

    listed = client.get("/v1/projects", headers=VIEW).json()["items"]
    assert {p["project_id"]: p["earned_value"] for p in listed} == {
        "X-DONE": None, "X-HUGE": None, "X-OK": "333.00"}
