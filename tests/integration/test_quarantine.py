"""Quarantine on real stores (SQLite and PostgreSQL): one bad stored event stops only its
aggregate's view; the others go on, the position advances, retry and evict act on it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from api.routers.quarantine import SOURCE, recorder
from domain import commands as c
from domain.application import PmoApplication
from domain.project import Project
from domain.values import Envelope
from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections.audit_read import AuditFilter, page, verify
from projections.audit_verify import contract
from projections.db import Db
from projections.runner import EmbeddedRunner, rebuild
from projections.service import ProjectionService, build_projections
from storage.urls import StoreUrl
from tests.integration.test_projection_views import Publisher, make_settings, seed, view
from tests.quarantine_support import (
    POISON,
    BrokenProjects,
    rows_of,
    store_raw,
    unreadable_amount,
    version_of,
    with_broken_projects,
)

Stores = tuple[PmoApplication, ProjectionService, Settings]
A_ID = Project.id_for("A")


@pytest.fixture
def stores(store_url: str, tmp_path: Path) -> Iterator[Stores]:
    BrokenProjects.fixed = False
    settings = make_settings(store_url, tmp_path)
    app = build_application(settings)
    service = build_projections(settings)
    yield app, service, settings
    service.close()
    app.close()


def cost(key: str, amount: str, reference: str) -> c.RecordCost:
    return c.RecordCost(key, Decimal(amount), "EUR", date(2026, 2, 3), "labour", reference)


def lag(runner: EmbeddedRunner) -> dict[str, int]:
    return {s["name"]: s["lag"] for s in runner.status()}


def quarantined(service: ProjectionService) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e.projection, e.aggregate): e.as_item()
            for e in service.quarantined(None, None, 100)}


def held_positions(service: ProjectionService, projection: str, store_id: str) -> list[int]:
    return [p for (p,) in service.db.query(
        "SELECT position FROM pv_quarantine_held WHERE projection = ? AND aggregate = ? "
        "ORDER BY position", (projection, store_id))]


def test_a_stored_event_no_fold_can_read_quarantines_only_its_aggregate(
        stores: Stores) -> None:
    app, service, settings = stores
    publish = Publisher(app)
    seed(publish)
    runner = EmbeddedRunner(app, service)
    runner.catch_up()
    before = view(service.project("A"))
    version = version_of(app, "A")
    # As an old version of the service could have stored it: an amount no fold can read,
    # then a good cost of the same project, and in the same batch costs of another project.
    bad = store_raw(app, Project.CostRecorded, A_ID, version + 1, unreadable_amount,
                    amount=Decimal("1"), currency="EUR", incurred_on=date(2026, 2, 4),
                    category="labour", reference="old-1")
    later = store_raw(app, Project.CostRecorded, A_ID, version + 2, amount=Decimal("7"),
                      currency="EUR", incurred_on=date(2026, 2, 5), category="labour",
                      reference="old-2")
    publish(cost("B", "10.00", "b-1"))
    runner.catch_up()

    entry = quarantined(service)[("projects", A_ID.hex)]
    assert entry["aggregate"] == "A" and entry["first_position"] == bad
    assert entry["first_version"] == version + 1 and entry["held_events"] == 2
    assert entry["error_class"] == "InvalidOperation"
    assert held_positions(service, "projects", A_ID.hex) == [bad, later]
    assert set(quarantined(service)) == {("projects", A_ID.hex)}  # no other view failed
    assert lag(runner) == dict.fromkeys(service.names(), 0)  # nothing stalls
    a = view(service.project("A"))
    assert a.pop("quarantined") is True and before.pop("quarantined") is False
    assert a == before  # its last good state
    assert view(service.project("B"))["actual_cost"] == "10.00"  # the others go on
    portfolio = view(service.portfolio("PF"))
    assert portfolio["quarantined"] is True and portfolio["quarantined_projects"] == ["A"]
    assert view(service.manager("M1"))["quarantined_projects"] == ["A"]
    status = {s["name"]: s for s in runner.status()}
    assert status["projects"]["quarantined"] == 1 and status["projects"]["held_events"] == 2
    assert status["projects"]["quarantined_aggregates"] == [{
        "aggregate": "A", "first_position": bad, "error": "InvalidOperation",
        "since": entry["since"]}]
    assert status["portfolios"]["quarantined"] == 0

    # A later batch: A's new event is held in order, B's applied; after a restart too.
    publish(cost("B", "1.00", "b-2"))
    newer = store_raw(app, Project.CostRecorded, A_ID, version + 3, amount=Decimal("1"),
                      currency="EUR", incurred_on=date(2026, 2, 6), category="labour",
                      reference="old-3")
    runner.catch_up()
    service.close()
    restarted = build_projections(settings)
    runner = EmbeddedRunner(app, restarted)
    publish(cost("B", "2.00", "b-3"))
    runner.catch_up()
    assert held_positions(restarted, "projects", A_ID.hex) == [bad, later, newer]
    assert view(restarted.project("B"))["actual_cost"] == "13.00"
    assert view(restarted.project("A"))["quarantined"] is True
    assert lag(runner)["projects"] == 0
    assert verify(restarted.db, app)["ok"] is True
    restarted.close()


def test_a_view_row_the_store_refuses_is_found_by_bisection(stores: Stores) -> None:
    app, service, _ = stores
    publish = Publisher(app)
    seed(publish)
    for key in ("D", "E", "F"):
        publish(c.ProposeProject(key, "PF", f"Project {key}", "COO", Decimal("10"),
                                 date(2026, 1, 1), date(2026, 12, 31)))
    # An approval whose budget folds (kept as text) but cannot be written (not a number),
    # amid events of other projects in the same batch.
    bad = store_raw(app, Project.Approved, Project.id_for("E"), 2,
                    lambda body: body["approved_budget"].update(_data_="lots"),
                    approved_budget=Decimal("5"), approver="board")
    publish(c.ApproveProject("D", Decimal("10"), "board"),
            c.ApproveProject("F", Decimal("10"), "board"))
    runner = EmbeddedRunner(app, service)
    runner.catch_up()
    entry = quarantined(service)[("projects", Project.id_for("E").hex)]
    assert (entry["aggregate"], entry["first_position"]) == ("E", bad)
    assert entry["error_class"] == "ValueError" and entry["held_events"] == 1
    assert {view(service.project(k))["state"] for k in ("D", "F")} == {"approved"}
    e = view(service.project("E"))
    assert (e["state"], e["quarantined"]) == ("proposed", True)
    assert lag(runner)["projects"] == 0


def test_a_nul_that_postgresql_cannot_store_quarantines_one_project(
        stores: Stores, store_url: str) -> None:
    app, service, _ = stores
    publish = Publisher(app)
    seed(publish)
    publish(c.ProposeProject("N", "PF", "bad\x00name", "COO", Decimal("10"), date(2026, 1, 1),
                             date(2026, 12, 31)),
            c.ProposeProject("G", "PF", "good name", "COO", Decimal("10"), date(2026, 1, 1),
                             date(2026, 12, 31)))
    runner = EmbeddedRunner(app, service)
    runner.catch_up()
    assert view(service.project("G"))["name"] == "good name"
    assert lag(runner) == dict.fromkeys(service.names(), 0)
    found = quarantined(service)
    if store_url.startswith("postgresql"):  # SQLite text holds a NUL; PostgreSQL's cannot
        assert set(found) == {("projects", Project.id_for("N").hex)}
        assert found[("projects", Project.id_for("N").hex)]["error_class"] == "DataError"
        assert service.project("N") is None
    else:
        assert found == {}


def test_retry_after_the_fix_applies_the_held_events_like_a_clean_rebuild(
        stores: Stores, tmp_path: Path) -> None:
    app, service, _ = stores
    with_broken_projects(service)
    publish = Publisher(app)
    seed(publish)
    runner = EmbeddedRunner(app, service)
    runner.catch_up()
    publish(cost("A", "5.00", POISON), cost("B", "3.00", "b-1"))
    publish(cost("A", "6.00", "a-2"), cost("A", "7.00", "a-3"))
    runner.catch_up()
    entry = quarantined(service)[("projects", A_ID.hex)]
    assert entry["held_events"] == 3 and entry["error_class"] == "ValueError"
    recorded: list[dict[str, Any]] = []

    # Not fixed yet: it fails again, and says so.
    again = service.retry_quarantined("projects", "A", recorded.append)
    assert (again["status"], again["error_class"], again["applied_events"]) == (
        "quarantined", "ValueError", 0)
    entry2 = quarantined(service)[("projects", A_ID.hex)]
    assert (entry2["retries"], entry2["since"], entry2["held_events"]) == (1, entry["since"], 3)

    BrokenProjects.fixed = True  # the fix is deployed
    envelope = Envelope(SOURCE, "action-1", "key:0123456789abcdef", datetime.now(UTC))
    record = recorder(app, envelope, evict=False)  # what the API stores

    def recording(outcome: dict[str, Any]) -> None:
        recorded.append(outcome)
        record(outcome)

    done = service.retry_quarantined("projects", A_ID.hex, recording)  # by store id too
    assert (done["status"], done["applied_events"], done["aggregate"]) == ("released", 3, "A")
    assert [r["status"] for r in recorded] == ["quarantined", "released"]
    runner.catch_up()  # the action is a stored event: in the trail, in the chain
    [action] = page(service.db, AuditFilter(type="pmo.ledger.quarantine_retried"), 0, 10)[0]
    assert (action["aggregate_id"], action["actor"], action["source"]) == (
        "quarantine/projects/A", "key:0123456789abcdef", SOURCE)
    assert contract(verify(service.db, app)) == {"ok": True,
                                       "checked": app.recorder.max_notification_id()}
    assert quarantined(service) == {}  # no view took the action for one of its events
    assert quarantined(service) == {}
    a = view(service.project("A"))
    assert a["actual_cost"] == "218.00" and a["quarantined"] is False
    assert view(service.portfolio("PF"))["quarantined_projects"] == []

    clean = ProjectionService(Db(StoreUrl.parse(f"sqlite:///{tmp_path / 'clean.sqlite'}")))
    rebuild(app, clean)
    assert rows_of(service, A_ID.hex) == rows_of(clean, A_ID.hex)
    clean.close()
    # Later events go straight in again.
    publish(cost("A", "1.00", "a-4"))
    runner.catch_up()
    assert view(service.project("A"))["actual_cost"] == "219.00"


def test_a_failing_record_leaves_the_quarantine_as_it_was(stores: Stores) -> None:
    app, service, _ = stores
    with_broken_projects(service)
    publish = Publisher(app)
    seed(publish)
    publish(cost("A", "5.00", POISON))
    EmbeddedRunner(app, service).catch_up()
    BrokenProjects.fixed = True

    def record(_: dict[str, Any]) -> None:
        raise ConnectionError("the event store is down")

    with pytest.raises(ConnectionError):
        service.retry_quarantined("projects", "A", record)
    assert ("projects", A_ID.hex) in quarantined(service)  # not applied without its record
    assert view(service.project("A"))["actual_cost"] == "200.00"


def test_evict_drops_the_view_and_later_events_of_the_aggregate(stores: Stores) -> None:
    app, service, _ = stores
    with_broken_projects(service)
    publish = Publisher(app)
    seed(publish)
    runner = EmbeddedRunner(app, service)
    publish(cost("A", "5.00", POISON))
    runner.catch_up()
    outcome = service.evict_quarantined("projects", "A", lambda _: None)
    assert outcome["status"] == "evicted" and outcome["removed_rows"] >= 2
    assert service.project("A") is None
    assert rows_of(service, A_ID.hex) == {t: [] for t in service.projects.tables}
    assert quarantined(service) == {}
    assert "A" not in view(service.portfolio("PF"))["quarantined_projects"]
    publish(cost("A", "1.00", "a-9"), cost("B", "1.00", "b-9"))
    runner.catch_up()
    assert service.project("A") is None and quarantined(service) == {}
    assert view(service.project("B"))["actual_cost"] == "1.00"
    with pytest.raises(LookupError):
        service.evict_quarantined("projects", "A", lambda _: None)
    with pytest.raises(KeyError):
        service.retry_quarantined("audit", "A", lambda _: None)  # the trail never quarantines


def test_a_store_error_is_not_quarantine_the_batch_is_retried(stores: Stores) -> None:
    app, service, _ = stores
    seed(Publisher(app))
    with service.db.transaction() as tx:
        tx.execute("DROP TABLE pv_managers")  # the store, not an event, is broken
    runner = EmbeddedRunner(app, service)
    with pytest.raises(Exception) as failure:
        runner.run_once()
    assert "pv_managers" in str(failure.value)
    assert quarantined(service) == {} and runner.position() == 0  # nothing committed
    runner.start()  # retried with backoff; status carries the whole error, class first (the
    # route shows it to auditors only: tests/e2e/test_read_edges.py checks viewers)
    try:
        deadline = time.monotonic() + 10
        while runner.error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        errors = {s["error"] for s in runner.status()}
        assert len(errors) == 1 and errors.pop().startswith(type(failure.value).__name__)
        assert all("pv_managers" in s["error"] for s in runner.status())
        service.managers.create_tables()
        assert runner.wait_for(app.recorder.max_notification_id() or 0, timeout=10)
    finally:
        runner.stop()
    runner.catch_up()
    assert quarantined(service) == {} and view(service.manager("M1"))["active_projects"] == 2


def test_hostile_names_find_nothing_and_never_fail(stores: Stores) -> None:
    _, service, _ = stores
    for name in ("a\x00b", "x" * 5000, "é/%?#"):
        assert service.quarantined(name, (name, name), 10) == []
        with pytest.raises(LookupError):
            service.retry_quarantined("projects", name, lambda _: None)
        with pytest.raises(LookupError):
            service.evict_quarantined("managers", name, lambda _: None)


def test_the_audit_trail_takes_a_stored_nul_in_the_envelope(stores: Stores) -> None:
    # The audit never quarantines (its chain needs every event): a NUL that an older version
    # stored in an envelope field (PostgreSQL text cannot hold it) is written escaped.
    app, service, _ = stores
    publish = Publisher(app)
    seed(publish)
    runner = EmbeddedRunner(app, service)
    runner.catch_up()

    def nul_actor(body: dict[str, Any]) -> None:
        body["actor"] = "ev\x00il"

    bad = store_raw(app, Project.CostRecorded, A_ID, version_of(app, "A") + 1, nul_actor,
                    amount=Decimal("1"), currency="EUR", incurred_on=date(2026, 2, 6),
                    category="labour", reference="nul")
    publish(cost("B", "1.00", "after-nul"))
    runner.catch_up()
    assert lag(runner)["audit"] == 0
    [row] = page(service.db, AuditFilter(aggregate="A"), bad - 1, 1)[0]
    assert (row["position"], row["actor"]) == (bad, "ev\\u0000il")
    assert contract(verify(service.db, app)) == {
        "ok": True, "checked": app.recorder.max_notification_id()}
