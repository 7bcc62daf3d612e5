"""Property: replaying the whole store, processing live event by event, and processing in
random batches build the same views, for random histories (valid and refused commands)."""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from domain import commands as c
from domain.values import Colour, Envelope, PmoType
from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections.log import read_log
from projections.runner import EmbeddedRunner, rebuild
from projections.service import ProjectionService, build_projections
from tests.conftest import drop_postgres_schema, fresh_postgres_schema

PROJECTS = ["P1", "P2", "P3"]
money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500"), places=2)
day = st.integers(min_value=0, max_value=400).map(lambda d: date(2026, 1, 1) + timedelta(days=d))
colour = st.sampled_from(list(Colour))


def project_commands(p: str) -> st.SearchStrategy[c.Command]:
    return st.one_of(
        st.sampled_from([None, "G1"]).map(lambda g: proposal(p, g)),
        money.map(lambda m: c.ApproveProject(p, m, "board")),
        st.just(c.RejectProject(p, "no")),
        st.sampled_from(["M1", "M2"]).map(lambda m: c.AssignManager(p, m)),
        day.map(lambda d: c.StartProject(p, d)),
        st.just(c.PutProjectOnHold(p, "pause")), st.just(c.ResumeProject(p)),
        money.map(lambda m: c.ChangeBudget(p, m, "scope")),
        money.map(lambda m: c.RecordCost(p, m, "EUR", date(2026, 3, 1), "labour", "INV")),
        money.map(lambda m: c.UpdateForecast(p, m)),
        day.map(lambda d: c.ChangeSchedule(p, d, "replan")),
        st.tuples(colour, st.integers(0, 100)).map(lambda t: c.ReportStatus(
            p, t[0], t[0], t[0], t[0], Decimal(t[1]), "status")),
        st.just(c.PlanMilestone(p, "MS1", "Go live", date(2026, 6, 1))),
        st.just(c.AchieveMilestone(p, "MS1", date(2026, 6, 2))),
        st.just(c.RaiseRisk(p, "R1", "Vendor", Decimal("0.5"), 3)),
        st.just(c.CloseRisk(p, "R1", "mitigated")),
        day.map(lambda d: c.CompleteProject(p, d)), st.just(c.CancelProject(p, "stop")),
    )


def proposal(p: str, program: str | None) -> c.ProposeProject:
    return c.ProposeProject(p, "PF", f"Project {p}", "COO", Decimal("100"), date(2026, 1, 1),
                            date(2026, 9, 30), program_id=program, objectives=(), priority=2)


# Proposals first (most other commands need one), then anything, valid or refused.
def opening(p: str, program: str | None, depth: int) -> list[c.Command]:
    steps: list[c.Command] = [proposal(p, program), c.ApproveProject(p, Decimal("300"), "board"),
                              c.AssignManager(p, "M1"), c.StartProject(p, date(2026, 1, 5))]
    return steps[:depth]


# Projects opened to a random depth first, then anything, valid or refused.
commands = st.tuples(
    st.lists(st.tuples(st.sampled_from([None, "G1"]), st.integers(1, 4)), min_size=1,
             max_size=3).map(lambda opened: [
                 step for p, (g, depth) in zip(PROJECTS, opened, strict=False)
                 for step in opening(p, g, depth)]),
    st.lists(st.sampled_from(PROJECTS).flatmap(project_commands), min_size=5, max_size=40),
).map(lambda t: [*t[0], *t[1]])
SETUP = [c.OpenPortfolio("PF", "Growth", PmoType.CONTROLLING, "EUR", Decimal("2000"), "Olga"),
         c.SetObjective("PF", "O1", "Grow", Decimal("0.5")),
         c.RegisterManager("M1", "Mia", 2), c.RegisterManager("M2", "Max", 1),
         c.LaunchProgram("G1", "PF", "Platform")]
TABLES = {"pv_projects": "id", "pv_portfolios": "id", "pv_programs": "id",
          "pv_managers": "id", "pv_project_history": "id, version", "pv_audit": "position"}


def snapshot(service: ProjectionService) -> dict[str, Any]:
    views: dict[str, Any] = {t: service.db.query(f"SELECT * FROM {t} ORDER BY {order}")
                             for t, order in TABLES.items()}
    views["portfolio"] = service.portfolio("PF")
    views["manager"] = service.manager("M1")
    views["program"] = service.program("G1")
    return views


def check(history: list[c.Command], sizes: list[int], replay_url: str | None = None) -> None:
    """Live (event by event), batched (random sizes) and replayed views must be equal."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)

        def store(name: str) -> ProjectionService:
            return build_projections(Settings(
                data_dir=root, projection_store_url=f"sqlite:///{root / name}",
                _env_file=None))

        app = build_application(Settings(data_dir=root, _env_file=None))
        live = store("live.sqlite")
        runner = EmbeddedRunner(app, live, batch_size=1)  # live: one event at a time
        start = datetime.now(UTC)
        for n, command in enumerate([*SETUP, *history]):
            app.record([(Envelope("urn:t", f"m{n}", "t", start), command)])
            runner.catch_up()
        replayed = (store("replay.sqlite") if replay_url is None else build_projections(
            Settings(data_dir=root, projection_store_url=replay_url, _env_file=None)))
        rebuild(app, replayed, batch_size=10_000)
        batched = store("batched.sqlite")
        events = read_log(app, 0, 10_000)
        i = 0
        while i < len(events):
            size = sizes[i % len(sizes)]
            for projection in batched.projections.values():
                projection.process(events[i:i + size], {"store": events[i:i + size][-1].position})
            i += size
        expected = snapshot(replayed)
        assert len(expected["pv_audit"]) == len(events) >= len(SETUP)
        event(f"projects in view: {len(expected['pv_projects'])}")
        event(f"states: {sorted({r[7] for r in expected['pv_projects']})}")
        assert snapshot(live) == expected
        assert snapshot(batched) == expected
        for service in (live, replayed, batched):
            service.close()
        app.close()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(history=commands, sizes=st.lists(st.integers(1, 7), min_size=1, max_size=10))
def test_replay_equals_live_equals_random_batches(history: list[c.Command],
                                                  sizes: list[int]) -> None:
    check(history, sizes)


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(history=commands, sizes=st.lists(st.integers(1, 7), min_size=1, max_size=10))
def test_replay_into_postgres_equals_live_on_sqlite(history: list[c.Command],
                                                    sizes: list[int]) -> None:
    url = fresh_postgres_schema()
    try:
        check(history, sizes, replay_url=url)
    finally:
        drop_postgres_schema(url)
