"""The ingest application on real stores: SQLite files and PostgreSQL (every test, both)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from domain.application import PmoApplication
from domain.manager import Manager
from domain.project import Project
from ingest.cloudevents import parse_structured
from ingest.service import Inbound, IngestService, Result
from pmo.bootstrap import build_application
from pmo.settings import Settings

_n = iter(range(10**9))


def ce(type_: str, subject: str, data: dict[str, Any], *, id_: str | None = None,
       source: str = "jira/cloud") -> dict[str, Any]:
    return {"specversion": "1.0", "id": id_ or f"ev-{next(_n)}", "source": source, "type": type_,
            "subject": subject, "time": "2026-01-05T09:00:00Z", "actor": "carol", "data": data}


def inbound(*events: dict[str, Any]) -> list[Inbound]:
    return [Inbound(orjson.dumps(e), parse_structured(e)) for e in events]


def opening(pmo_type: str = "directive", envelope: str = "1000000") -> list[dict[str, Any]]:
    return [
        ce("pmo.portfolio.opened", "PF", {"name": "Digital", "pmo_type": pmo_type,
                                          "currency": "EUR", "budget_envelope": envelope,
                                          "owner": "cio"}),
        ce("pmo.manager.registered", "M1", {"name": "Dana", "capacity": 5}),
    ]


def project_start(key: str, budget: str = "1000") -> list[dict[str, Any]]:
    return [
        ce("pmo.project.proposed", key, {
            "portfolio_id": "PF", "name": key, "sponsor": "Eve", "budget_requested": budget,
            "planned_start": "2026-01-01", "planned_finish": "2026-12-31"}),
        ce("pmo.project.approved", key, {"approved_budget": budget, "approver": "board"}),
        ce("pmo.project.manager_assigned", key, {"manager_id": "M1"}),
        ce("pmo.project.started", key, {"started_on": "2026-01-10"}),
    ]


def cost(key: str, amount: str = "10.05", **kw: Any) -> dict[str, Any]:
    return ce("pmo.project.cost_recorded", key, {
        "amount": amount, "currency": "EUR", "incurred_on": "2026-02-01", "category": "labour",
        "reference": "INV"}, **kw)


@pytest.fixture
def app(store_url: str) -> Iterator[PmoApplication]:
    application = build_application(Settings(event_store_url=store_url))
    yield application
    application.close()


def submit(app: PmoApplication, *events: dict[str, Any]) -> list[Result]:
    return IngestService(app).submit(inbound(*events))


def stored_count(app: PmoApplication) -> int:
    return len(app.recorder.select_notifications(None, 10**6))


def test_accepted_events_are_stored_in_order_with_their_envelope(app: PmoApplication) -> None:
    before = datetime.now(UTC)
    results = submit(app, *opening(), *project_start("P1"))
    assert [r.status for r in results] == ["accepted"] * 6
    positions = [r.position for r in results]
    assert positions == sorted(positions) and len(set(positions)) == 6
    events = list(app.events.get(Project.id_for("P1")))
    assert [e.TOPIC for e in events] == ["pmo.project.proposed", "pmo.project.approved",
                                         "pmo.project.manager_assigned", "pmo.project.started"]
    first = events[0]
    assert (first.source, first.actor, first.time) == ("jira/cloud", "carol",
                                                       datetime(2026, 1, 5, 9, tzinfo=UTC))
    assert first.event_id == results[2].id
    assert before <= first.timestamp <= datetime.now(UTC)  # recorded_at is the store's time


def test_a_duplicate_changes_nothing_and_answers_the_first_position(app: PmoApplication) -> None:
    submit(app, *opening(), *project_start("P1"))
    charge = cost("P1", id_="invoice-77")
    first = submit(app, charge)[0]
    count = stored_count(app)
    again = submit(app, charge, dict(charge))  # redelivered, twice in one batch
    assert [r.status for r in again] == ["duplicate", "duplicate"]
    assert {r.position for r in again} == {first.position}
    assert stored_count(app) == count
    project = app.get_by_key(Project, "P1")
    assert project is not None and project.actual_cost == Decimal("10.05")


def test_the_same_id_from_another_source_is_a_different_message(app: PmoApplication) -> None:
    submit(app, *opening(), *project_start("P1"))
    results = submit(app, cost("P1", id_="42", source="a"), cost("P1", id_="42", source="b"))
    assert [r.status for r in results] == ["accepted", "accepted"]


def test_a_repeat_inside_one_batch_is_stored_once(app: PmoApplication) -> None:
    charge = cost("P1", id_="inv-1")
    results = submit(app, *opening(), *project_start("P1"), charge, charge)
    assert [r.status for r in results[-2:]] == ["accepted", "duplicate"]
    assert results[-1].position == results[-2].position
    project = app.get_by_key(Project, "P1")
    assert project is not None and project.actual_cost == Decimal("10.05")


def test_refused_and_invalid_messages_store_nothing(app: PmoApplication) -> None:
    submit(app, *opening())
    count = stored_count(app)
    bad = [cost("GHOST"),                                     # unknown project
           ce("pmo.project.started", "GHOST", {"started_on": "2026-01-01"}),
           ce("pmo.project.cost_recorded", "P1", {"amount": 5})]  # money as a number
    results = IngestService(app).submit(
        [*inbound(*bad), Inbound(b"{oops", None, "not valid JSON")])
    assert [r.status for r in results] == ["rejected", "rejected", "invalid", "invalid"]
    assert "unknown project 'GHOST'" in (results[0].reason or "")
    assert stored_count(app) == count


def test_a_batch_mixing_outcomes_stores_only_the_accepted(app: PmoApplication) -> None:
    events = [*opening(), *project_start("P1"), cost("P1", "-1"), cost("P1", "2.50"),
              ce("pmo.project.completed", "P1", {"finished_on": "2026-06-01"}),
              cost("P1", "1.00")]
    results = submit(app, *events)
    assert [r.status for r in results] == [
        "accepted"] * 6 + ["invalid", "accepted", "accepted", "rejected"]
    assert results[-1].reason and "completed" in results[-1].reason


def test_concurrent_writers_on_one_project_lose_nothing(store_url: str) -> None:
    """Two applications (two caches) on one store: version conflicts are retried, never lost."""
    apps = [build_application(Settings(event_store_url=store_url)) for _ in range(2)]
    try:
        submit(apps[0], *opening(), *project_start("P1"))
        for other in apps:  # warm both caches so each writes from a stale copy
            assert other.get_by_key(Project, "P1") is not None
            IngestService(other).submit(inbound(cost("P1", "0.01")))
        errors: list[BaseException] = []

        def hammer(application: PmoApplication) -> None:
            try:
                for _ in range(15):
                    results = submit(application, *[cost("P1", "1.00") for _ in range(8)])
                    assert all(r.status == "accepted" for r in results), results
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=hammer, args=(a,)) for a in apps]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        fresh = build_application(Settings(event_store_url=store_url))
        project = fresh.get_by_key(Project, "P1")
        assert project is not None
        assert project.actual_cost == Decimal("240.02")  # 2 x 15 x 8 x 1.00 + 2 x 0.01
        fresh.close()
    finally:
        for a in apps:
            a.close()


def test_a_crash_between_two_batch_saves_leaves_exactly_the_first_batch(store_url: str) -> None:
    stream = [*opening(), *project_start("P1"), *[cost("P1", "1.00") for _ in range(10)]]
    first, second = stream[:8], stream[8:]
    app = build_application(Settings(event_store_url=store_url))
    service = IngestService(app)
    assert all(r.status == "accepted" for r in service.submit(inbound(*first)))

    def crash(*args: Any, **kwargs: Any) -> None:
        raise SystemExit("power cut during the second batch")

    app.recorder.insert_events = crash  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        service.submit(inbound(*second))
    app.close()

    restarted = build_application(Settings(event_store_url=store_url))
    after_crash = restarted.get_by_key(Project, "P1")
    assert after_crash is not None and after_crash.actual_cost == Decimal("2.00")
    results = IngestService(restarted).submit(inbound(*stream))  # the publisher resends all
    assert [r.status for r in results] == ["duplicate"] * 8 + ["accepted"] * 8
    project = restarted.get_by_key(Project, "P1")
    assert project is not None and project.actual_cost == Decimal("10.00")
    restarted.close()


def test_as_of_answers_what_the_store_knew_then(app: PmoApplication) -> None:
    submit(app, *opening(), *project_start("P1"))
    between = datetime.now(UTC)
    submit(app, cost("P1", "5.00"))
    then = app.get_by_key(Project, "P1", as_of=between)
    now = app.get_by_key(Project, "P1")
    assert then is not None and now is not None
    assert (then.actual_cost, now.actual_cost) == (Decimal("0"), Decimal("5.00"))
    assert app.get_by_key(Project, "P1", as_of=between - timedelta(days=1)) is None


def test_long_lived_aggregates_are_snapshotted_and_load_the_same(
        app: PmoApplication, store_url: str) -> None:
    submit(app, *opening(), *project_start("P1"))
    for _ in range(3):
        submit(app, *[cost("P1", "0.10") for _ in range(50)])
    assert app.snapshots is not None
    # Taken from memory at the end of the batch that crossed version 100.
    snapshots = list(app.snapshots.get(Project.id_for("P1")))
    assert [s.originator_version for s in snapshots] == [104]
    fresh = build_application(Settings(event_store_url=store_url))  # empty cache
    project = fresh.get_by_key(Project, "P1")
    assert project is not None and project.version == 154
    assert project.actual_cost == Decimal("15.00")
    assert project == app.get_by_key(Project, "P1")
    fresh.close()


def test_events_stored_by_an_older_class_version_are_upcast(app: PmoApplication) -> None:
    """Manager.Registered v1 had no grade; v2 reads it as None."""
    submit(app, *opening())
    stored = app.mapper.to_stored_event(Manager.register(
        "OLD", name="Olga", capacity=3, grade="senior",
        envelope=parse_structured(opening()[0]).envelope()).collect_events()[0])
    state = orjson.loads(stored.state)
    del state["grade"], state["class_version"]
    app.recorder.insert_events([stored.__class__(
        originator_id=stored.originator_id, originator_version=1, topic=stored.topic,
        state=orjson.dumps(state))], timestamps=[datetime.now(UTC)])
    manager = app.get_by_key(Manager, "OLD")
    assert manager is not None and manager.grade is None and manager.name == "Olga"


def test_a_duplicate_racing_past_the_precheck_is_caught_by_the_store(store_url: str) -> None:
    """Another writer stores the message between our duplicate check and our write."""
    first, racer = (build_application(Settings(event_store_url=store_url)) for _ in range(2))
    try:
        submit(first, *opening(), *project_start("P1"))
        charge = cost("P1", id_="raced-1")
        stored = submit(first, charge)[0]
        count = stored_count(first)
        real = racer.recorder.positions_of  # type: ignore[attr-defined]
        calls = iter([{}])  # the pre-check sees nothing: the other writer had not committed

        def late_check(keys: Any) -> dict[tuple[str, str], int]:
            return next(calls, None) or real(keys)  # type: ignore[no-any-return]

        racer.recorder.positions_of = late_check  # type: ignore[attr-defined]
        result = submit(racer, charge, cost("P1", "1.00"))
        assert [r.status for r in result] == ["duplicate", "accepted"]
        assert result[0].position == stored.position
        assert stored_count(racer) == count + 1
        project = build_application(Settings(event_store_url=store_url)).get_by_key(
            Project, "P1")
        assert project is not None and project.actual_cost == Decimal("11.05")
    finally:
        first.close()
        racer.close()
