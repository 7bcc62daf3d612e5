"""Valid time beside recording time (CONTRACT section 13), on real stores.

Recording instants are the store's own: a test captures ``datetime.now(UTC)`` between
two recordings and uses it as ``as_of`` (as the as-of tests do). Valid times are the
``time`` each event is published with.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain import commands as c
from domain.application import PmoApplication
from domain.base import store_id
from domain.values import Colour, Envelope, PmoType
from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections.feed import from_stored, micros
from projections.folds import fold_all, fold_project
from projections.lists import ProjectQuery
from projections.runner import EmbeddedRunner
from projections.service import ProjectionService, build_projections
from projections.validtime import time_us
from projections.views import project_view

Stores = tuple[PmoApplication, ProjectionService]
JUNE_1 = datetime(2026, 6, 1, 9, tzinfo=UTC)
JUNE_30 = datetime(2026, 6, 30, 23, 59, tzinfo=UTC)


def open_stores(store_url: str, tmp_path: Path) -> Stores:
    projection_url = (store_url if store_url.startswith("postgresql")
                      else f"sqlite:///{tmp_path / 'projections.sqlite'}")
    settings = Settings(data_dir=tmp_path / "data", event_store_url=store_url,
                        projection_store_url=projection_url, _env_file=None)
    return build_application(settings), build_projections(settings)


@pytest.fixture
def stores(store_url: str, tmp_path: Path) -> Iterator[Stores]:
    app, service = open_stores(store_url, tmp_path)
    yield app, service
    service.close()
    app.close()


class Publisher:
    """Records commands, each with the publisher's ``time`` given; returns the instant just
    after (a recording time at which they are all known)."""

    def __init__(self, app: PmoApplication) -> None:
        self.app = app
        self.n = 0

    def __call__(self, *items: tuple[datetime, c.Command]) -> datetime:
        batch = []
        for when, command in items:
            self.n += 1
            batch.append((Envelope("urn:test", f"m{self.n}", "tester", when), command))
        outcomes = self.app.record(batch)
        assert all(o.status == "accepted" for o in outcomes), outcomes
        return datetime.now(UTC)


def view(body: bytes | None) -> dict[str, Any]:
    assert body is not None
    result: dict[str, Any] = orjson.loads(body)
    return result


def open_project(publish: Publisher, key: str, when: datetime) -> datetime:
    return publish(
        (when, c.ProposeProject(key, "PF", f"Project {key}", "COO", Decimal("1000"),
                                date(2026, 1, 1), date(2026, 12, 31), objectives=())),
        (when, c.ApproveProject(key, Decimal("1000"), "board")),
        (when, c.StartProject(key, date(2026, 1, 2))))


def cost(key: str, amount: str, ref: str) -> c.Command:
    return c.RecordCost(key, Decimal(amount), "EUR", date(2026, 6, 15), "labour", ref)


def test_a_cost_back_dated_to_june_counts_for_june_from_july_on(stores: Stores) -> None:
    app, service = stores
    publish = Publisher(app)
    publish((JUNE_1, c.OpenPortfolio("PF", "Growth", PmoType.SUPPORTIVE, "EUR",
                                     Decimal("1000000"), "Olga")))
    open_project(publish, "A", JUNE_1)
    july_1 = publish((JUNE_1 + timedelta(days=9), cost("A", "100", "i1")))  # the month-end report
    # Learned in July: an invoice of June 20 (A's previous event has a June time).
    publish((datetime(2026, 6, 20, tzinfo=UTC), cost("A", "40", "i2")))
    runner = EmbeddedRunner(app, service)
    runner.catch_up()

    now_june = view(service.valid_at(app, "project", "A", JUNE_30))
    reported = view(service.valid_at(app, "project", "A", JUNE_30, july_1))
    assert (now_june["actual_cost"], reported["actual_cost"]) == ("140", "100")
    assert reported["as_of"] == july_1.isoformat() and "as_of" not in now_june
    assert now_june["valid_at"] == JUNE_30.isoformat()
    portfolio_now = view(service.valid_at(app, "portfolio", "PF", JUNE_30))
    portfolio_then = view(service.valid_at(app, "portfolio", "PF", JUNE_30, july_1))
    assert (portfolio_now["actual_cost"], portfolio_then["actual_cost"]) == ("140", "100")
    # Before anything was valid, nothing exists; before anything was recorded, neither.
    assert service.valid_at(app, "project", "A", JUNE_1 - timedelta(days=1)) is None
    assert service.valid_at(app, "project", "A", JUNE_30, JUNE_1.replace(year=2000)) is None

    # A July status report, then another cost back-dated to June 25: valid time never runs
    # backwards within the project, so that cost is valid from July 2 and June stays put.
    publish((datetime(2026, 7, 2, tzinfo=UTC),
             c.ReportStatus("A", Colour.GREEN, Colour.GREEN, Colour.GREEN, Colour.GREEN,
                            Decimal("20"), "fine")))
    publish((datetime(2026, 6, 25, tzinfo=UTC), cost("A", "7", "i3")))
    runner.catch_up()
    assert view(service.valid_at(app, "project", "A", JUNE_30))["actual_cost"] == "140"
    july = view(service.valid_at(app, "project", "A", datetime(2026, 7, 3, tzinfo=UTC)))
    assert (july["actual_cost"], july["percent_complete"]) == ("147", 20)
    assert view(service.valid_at(app, "portfolio", "PF", JUNE_30))["actual_cost"] == "140"
    assert view(service.valid_at(app, "portfolio", "PF", datetime(
        2026, 7, 3, tzinfo=UTC)))["actual_cost"] == "147"


def test_list_program_and_manager_at_a_valid_time(stores: Stores) -> None:
    app, service = stores
    publish = Publisher(app)
    publish((JUNE_1, c.OpenPortfolio("PF", "Growth", PmoType.SUPPORTIVE, "EUR",
                                     Decimal("1000000"), "Olga")),
            (JUNE_1, c.RegisterManager("M1", "Mia", 3)),
            (JUNE_1, c.LaunchProgram("PG", "PF", "Platform")))
    for key, when in (("A", JUNE_1), ("B", datetime(2026, 7, 5, tzinfo=UTC))):
        publish((when, c.ProposeProject(key, "PF", f"Project {key}", "COO", Decimal("1000"),
                                        date(2026, 1, 1), date(2026, 12, 31), program_id="PG",
                                        objectives=())),
                (when, c.ApproveProject(key, Decimal("1000"), "board")),
                (when, c.AssignManager(key, "M1")))
    publish((datetime(2026, 7, 6, tzinfo=UTC), c.StartProject("A", date(2026, 7, 6))))
    EmbeddedRunner(app, service).catch_up()

    def ids(**kwargs: Any) -> list[str]:
        body = view(service.project_list_valid(app, ProjectQuery(**kwargs), JUNE_30))
        return [p["project_id"] for p in body["items"]]

    assert ids() == ["A"] and ids(state="approved") == ["A"] and ids(state="active") == []
    july = datetime(2026, 7, 31, tzinfo=UTC)
    page = view(service.project_list_valid(app, ProjectQuery(limit=1), july))
    assert [p["project_id"] for p in page["items"]] == ["A"]
    rest = view(service.project_list_valid(app, ProjectQuery(limit=1, cursor=page["next_cursor"]),
                                           july))
    assert [p["project_id"] for p in rest["items"]] == ["B"] and rest["next_cursor"] is None

    def ordered(sort: str, when: datetime = july, limit: int = 1) -> list[str]:
        seen: list[str] = []
        cursor = None
        while True:
            body = view(service.project_list_valid(
                app, ProjectQuery(sort=sort, limit=limit, cursor=cursor), when))
            seen += [p["project_id"] for p in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                return seen

    # July 31: A started (active), B approved; June 30: only A, approved.
    assert ordered("state") == ["A", "B"] and ordered("-state") == ["B", "A"]  # active < approved
    assert ordered("-project_id") == ["B", "A"] and ordered("-name", JUNE_30) == ["A"]
    assert ordered("approved_budget", limit=5) == ["A", "B"]
    assert view(service.valid_at(app, "program", "PG", JUNE_30))["projects"] == ["A"]
    assert view(service.valid_at(app, "program", "PG", july))["projects"] == ["A", "B"]
    june_manager = view(service.valid_at(app, "manager", "M1", JUNE_30))
    assert june_manager["projects"] == ["A"] and june_manager["active_projects"] == 1


# -- the definition, for every history --------------------------------------------------

DAY0 = datetime(2026, 6, 1, tzinfo=UTC)
# (project, cost|status|risk, day of its time); a risk changes no figure row, so the
# reads must find the cut among the stored events between two figure rows.
Step = tuple[str, str, int]
steps = st.lists(st.tuples(st.sampled_from(["A", "B"]), st.sampled_from(["cost", "status", "risk"]),
                           st.integers(0, 20)), min_size=1, max_size=12)


def selected(app: PmoApplication, key: str, valid: datetime,
             recorded: datetime | None) -> list[Any]:
    """The definition, literally: every stored event of the project, with its valid time
    (its ``time``, or its predecessor's valid time if later); keep those recorded at or
    before R and valid at or before T."""
    events = from_stored(app.mapper, app.recorder.select_events(store_id("project", key)))
    chosen, running = [], 0
    for e in events:
        running = max(running, time_us(e))
        if running <= micros(valid) and (recorded is None or e.recorded_at <= recorded):
            chosen.append(e)
    return chosen


@settings(max_examples=25, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(history=steps, proposed=st.tuples(st.integers(0, 10), st.integers(0, 10)),
       batches=st.lists(st.integers(1, 4), min_size=12, max_size=12),
       probes=st.lists(st.tuples(st.integers(-1, 22), st.integers(-1, 8)),
                       min_size=4, max_size=4))
def test_view_at_valid_and_recorded_time_folds_exactly_the_selected_events(
        history: list[Step], proposed: tuple[int, int], batches: list[int],
        probes: list[tuple[int, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app, service = open_stores(f"sqlite:///{Path(tmp) / 'events.sqlite'}", Path(tmp))
        try:
            publish = Publisher(app)
            instants = [publish((DAY0, c.OpenPortfolio(
                "PF", "Growth", PmoType.SUPPORTIVE, "EUR", Decimal("1000000"), "Olga")))]
            for key, day in zip("AB", proposed, strict=True):
                instants.append(open_project(publish, key, DAY0 + timedelta(days=day)))
            items = []
            for n, (key, kind, day) in enumerate(history):
                command: c.Command = (
                    cost(key, f"{n + 1}.5", f"r{n}") if kind == "cost" else
                    c.RaiseRisk(key, f"R{n}", "risk", Decimal("0.5"), 3) if kind == "risk" else
                    c.ReportStatus(key, Colour.AMBER, Colour.GREEN, Colour.RED,
                                   Colour.GREEN, Decimal(n * 5 % 101), "s"))
                items.append((DAY0 + timedelta(days=day, hours=n), command))
            while items:  # random recording order across batches, so random recording times
                size = batches[len(instants) % len(batches)]
                instants.append(publish(*items[:size]))
                items = items[size:]
            EmbeddedRunner(app, service).catch_up()
            for valid_day, recorded_n in probes:
                valid = DAY0 + timedelta(days=valid_day, hours=12)
                recorded = None if recorded_n < 0 else instants[min(recorded_n,
                                                                    len(instants) - 1)]
                total = Decimal(0)
                for key in "AB":
                    chosen = selected(app, key, valid, recorded)
                    doc = fold_all(fold_project, chosen)
                    body = service.valid_at(app, "project", key, valid, recorded)
                    if doc is None:
                        assert body is None
                        continue
                    total += Decimal(doc["actual_cost"])
                    got = view(body)
                    for extra in ("valid_at", "as_of", "quarantined"):
                        got.pop(extra, None)
                    assert got == project_view(doc, valid.date())
                portfolio = service.valid_at(app, "portfolio", "PF", valid, recorded)
                if portfolio is not None:
                    assert Decimal(view(portfolio)["actual_cost"]) == total
        finally:
            service.close()
            app.close()


def test_events_between_figure_rows_are_cut_by_their_running_valid_time(stores: Stores) -> None:
    """Risks write no figure row: the read finds the cut among the stored events."""
    app, service = stores
    publish = Publisher(app)
    publish((JUNE_1, c.OpenPortfolio("PF", "Growth", PmoType.SUPPORTIVE, "EUR",
                                     Decimal("1000000"), "Olga")))
    open_project(publish, "A", JUNE_1)
    for n, when in enumerate((datetime(2026, 6, 5, tzinfo=UTC), datetime(2026, 7, 5, tzinfo=UTC),
                              datetime(2026, 6, 10, tzinfo=UTC))):
        publish((when, c.RaiseRisk("A", f"R{n}", "risk", Decimal("0.5"), 3)))
    publish((datetime(2026, 6, 11, tzinfo=UTC), cost("A", "5", "late")))
    EmbeddedRunner(app, service).catch_up()
    june = view(service.valid_at(app, "project", "A", JUNE_30))
    # R2 (June 10) came after R1 (July 5): valid from July 5, like the cost after it.
    assert [r["risk_id"] for r in june["open_risks"]] == ["R0"]
    assert (june["actual_cost"], june["version"]) == ("0", 4)
    july = view(service.valid_at(app, "project", "A", datetime(2026, 7, 6, tzinfo=UTC)))
    assert [r["risk_id"] for r in july["open_risks"]] == ["R0", "R1", "R2"]
    assert july["actual_cost"] == "5"


def test_restatements_show_what_june_said_on_july_1_and_what_moved_it(stores: Stores) -> None:
    """The worked example: June closed on July 1 with A's 100 spent and B on track; in July
    an invoice of June 20 (40) arrives for A, and C's approval dated June 28 is recorded
    late; B records a July cost (valid in July: moves nothing for June)."""
    app, service = stores
    publish = Publisher(app)
    publish((JUNE_1, c.OpenPortfolio("PF", "Growth", PmoType.SUPPORTIVE, "EUR",
                                     Decimal("1000000"), "Olga")))
    open_project(publish, "A", JUNE_1)
    open_project(publish, "B", JUNE_1)
    publish((datetime(2026, 6, 10, tzinfo=UTC), cost("A", "100", "i1")),
            (datetime(2026, 6, 10, tzinfo=UTC),
             c.ProposeProject("C", "PF", "Project C", "CFO", Decimal("500"), date(2026, 1, 1),
                              date(2026, 12, 31), objectives=())))
    july_1 = datetime.now(UTC)
    publish((datetime(2026, 6, 20, tzinfo=UTC), cost("A", "40", "i2")),
            (datetime(2026, 6, 28, tzinfo=UTC), c.ApproveProject("C", Decimal("500"), "board")),
            (datetime(2026, 7, 3, tzinfo=UTC), cost("B", "999", "july")))
    EmbeddedRunner(app, service).catch_up()

    body = service.restatements(app, "PF", JUNE_30, july_1)
    assert body is not None
    found = orjson.loads(body)
    assert (found["valid_at"], found["reported_at"]) == (JUNE_30.isoformat(), july_1.isoformat())
    folio = found["portfolio"]
    assert (folio["reported"]["actual_cost"], folio["now"]["actual_cost"]) == ("100", "140")
    assert (folio["reported"]["approved_budget"], folio["now"]["approved_budget"]) == (
        "2000", "2500")
    assert folio["reported"]["projects_by_state"]["proposed"] == 1
    assert folio["now"]["projects_by_state"]["proposed"] == 0
    assert {"actual_cost", "approved_budget", "projects_by_state"} <= set(folio["moved"])
    by_id = {p["project_id"]: p for p in found["projects"]}
    assert set(by_id) == {"A", "C"}  # B's July cost is valid after June 30
    a = by_id["A"]
    assert (a["reported"]["actual_cost"], a["now"]["actual_cost"]) == ("100", "140")
    assert "actual_cost" in a["moved"] and "state" not in a["moved"]
    assert [(e["type"], e["source"], e["id"]) for e in a["events"]] == [
        ("pmo.project.cost_recorded", "urn:test", f"m{publish.n - 2}")]
    assert a["events"][0]["position"] == app.ledger.positions_by_version(
        store_id("project", "A"))[a["events"][0]["version"]]
    cc = by_id["C"]
    assert (cc["reported"]["state"], cc["now"]["state"], cc["moved"][0]) == (
        "proposed", "approved", "state")
    assert [e["type"] for e in cc["events"]] == ["pmo.project.approved"]
    # Reported now: nothing moved since.
    again = orjson.loads(service.restatements(app, "PF", JUNE_30, datetime.now(UTC)) or b"{}")
    assert again["projects"] == [] and again["portfolio"]["moved"] == []
    assert service.restatements(app, "nope", JUNE_30, july_1) is None


def test_views_written_before_valid_time_are_dropped_and_rebuilt(tmp_path: Path) -> None:
    app, service = open_stores(f"sqlite:///{tmp_path / 'events.sqlite'}", tmp_path)
    publish = Publisher(app)
    publish((JUNE_1, c.OpenPortfolio("PF", "Growth", PmoType.SUPPORTIVE, "EUR",
                                     Decimal("1000000"), "Olga")))
    open_project(publish, "A", JUNE_1)
    EmbeddedRunner(app, service).catch_up()
    with service.db.transaction() as tx:  # the layout of before: no valid times kept
        tx.execute("DROP INDEX pv_project_history_at")
        tx.execute("ALTER TABLE pv_project_history DROP COLUMN valid_us")
        tx.execute("DROP TABLE pv_portfolio_times")
    service.close()
    _, service = open_stores(f"sqlite:///{tmp_path / 'events.sqlite'}", tmp_path)
    try:
        assert "valid_us" in service.db.columns("pv_project_history")
        assert service.projects.tracking() == {} and service.portfolios.tracking() == {}
        assert service.managers.tracking() != {}  # the others keep their rows
        EmbeddedRunner(app, service).catch_up()
        assert view(service.valid_at(app, "portfolio", "PF", JUNE_30))["approved_budget"] == \
            "1000"
    finally:
        service.close()
        app.close()
