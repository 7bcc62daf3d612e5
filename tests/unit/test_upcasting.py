"""``pmo.project.status_reported`` v1 -> v2: a stored v1 report reads as the v2 report with
its derived ``status_date``, through the library's upcasting (domain events) and through
the folds (which read the stored JSON), on the store's path and on ``pmo.events``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
import pytest
from eventsourcing.persistence import Notification, StoredEvent
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from consumers.codec import EventDecoder, encode
from domain.application import PmoApplication
from domain.commands import ReportStatus
from domain.project import Project, status_date_of
from domain.values import Colour, Envelope
from ingest.jsonschemas import data_schemas
from ingest.schemas import TYPES
from projections.feed import RecordedEvent
from projections.folds import Doc, fold_all, fold_project
from storage.transcoder import FastJSONTranscoder

APP = PmoApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
                     transcoder=FastJSONTranscoder())
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TOPIC = "pmo.project.status_reported"


def env(n: int, time: datetime = START) -> Envelope:
    return Envelope("urn:test", f"e-{n}", "tester", time)


def active_project() -> Project:
    project = Project.propose(
        "P-UP", portfolio_id="PF", program_id=None, name="Upcast", sponsor="COO",
        budget_requested=Decimal(1000), planned_start=date(2026, 3, 1),
        planned_finish=date(2026, 12, 1), objectives=[], priority=None, envelope=env(1))
    project.approve(Decimal(1000), "board", env(2))
    project.start(date(2026, 3, 2), env(3))
    return project


def as_v1(stored: StoredEvent) -> StoredEvent:
    """The bytes today's code would have written before v2: no status_date, no version."""
    state = orjson.loads(stored.state)
    assert state.pop("class_version") == 2
    del state["status_date"]
    return StoredEvent(stored.originator_id, stored.originator_version, stored.topic,
                       orjson.dumps(state))


def recorded(stored: list[StoredEvent]) -> list[RecordedEvent]:
    return [RecordedEvent(i, s.originator_id, s.originator_version, s.topic, s.state)
            for i, s in enumerate(stored, start=1)]


def history(report_time: datetime, **status: Any) -> list[StoredEvent]:
    project = active_project()
    project.report_status(envelope=env(4, report_time), **status)
    return [APP.mapper.to_stored_event(e) for e in project.collect_events()]


STATUS = {"overall": Colour.AMBER, "scope": Colour.GREEN, "schedule": Colour.RED,
          "budget": Colour.GREEN, "percent_complete": Decimal("42.5"), "summary": "ok"}


def test_a_new_report_is_stored_as_v2_with_its_status_date() -> None:
    given_date = history(START, status_date=date(2026, 2, 27), **STATUS)[-1]
    derived = history(START, **STATUS)[-1]
    for stored, expected in ((given_date, "2026-02-27"), (derived, "2026-03-02")):
        state = orjson.loads(stored.state)
        assert state["class_version"] == 2
        assert state["status_date"] == {"_type_": "date_iso", "_data_": expected}


def test_the_default_is_the_utc_day_of_the_time_whatever_its_offset() -> None:
    late_in_new_york = datetime(2026, 3, 1, 21, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert status_date_of(late_in_new_york) == date(2026, 3, 2)
    assert status_date_of(START) == date(2026, 3, 2)


colours = st.sampled_from(list(Colour))
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31),
                        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-11)),
                                                   timezone(timedelta(hours=13, minutes=45))]))


@settings(max_examples=60, derandomize=True, deadline=None)
@given(time=instants, overall=colours, scope=colours, schedule=colours, budget=colours,
       percent=st.decimals(min_value=0, max_value=100, places=2),
       summary=st.text(max_size=40))
def test_a_v1_report_reads_and_folds_as_the_v2_report_with_the_derived_date(
        time: datetime, overall: Colour, scope: Colour, schedule: Colour, budget: Colour,
        percent: Decimal, summary: str) -> None:
    v2 = history(time, overall=overall, scope=scope, schedule=schedule, budget=budget,
                 percent_complete=percent, summary=summary)
    v1 = [*v2[:-1], as_v1(v2[-1])]
    assert v1[-1].state != v2[-1].state
    # The library's upcasting: the domain event read from v1 bytes is the v2 event.
    upcast, current = (APP.mapper.to_domain_event(s[-1]) for s in (v1, v2))
    assert vars(upcast) == vars(current)
    assert upcast.status_date == status_date_of(time)  # type: ignore[attr-defined]
    # The folds, which read the stored JSON: the same view either way.
    folded_v1: Doc | None = fold_all(fold_project, recorded(v1))
    folded_v2: Doc | None = fold_all(fold_project, recorded(v2))
    assert folded_v1 is not None and folded_v1 == folded_v2
    assert folded_v1["status_date"] == status_date_of(time).isoformat()


def test_a_v1_report_on_pmo_events_is_upcast_by_its_consumers() -> None:
    """Messages relayed before v2 stay on the topic: a consumer decoding one (the codec of
    every ``pmo consume``) folds it with the derived date, and its domain event is v2."""
    time = datetime(2026, 5, 31, 23, 59, tzinfo=UTC)
    v1 = [*history(time, **STATUS)]
    v1[-1] = as_v1(v1[-1])
    decoder = EventDecoder.for_pmo()
    events = []
    for position, stored in enumerate(v1, start=1):
        key, value, headers = encode(Notification(
            id=position, originator_id=stored.originator_id,
            originator_version=stored.originator_version, topic=stored.topic,
            state=stored.state), position - 1)
        assert value == stored.state  # the message carries the stored bytes unchanged
        events.append(decoder.decode(value, headers, key))
    doc = fold_all(fold_project, events)
    assert doc is not None and doc["status_date"] == "2026-05-31"
    assert doc["health"]["schedule"] == "red" and doc["percent_complete"] == "42.5"
    last = events[-1]
    event = APP.mapper.to_domain_event(StoredEvent(
        UUID(str(last.originator_id)), last.originator_version, last.topic, last.state))
    assert isinstance(event, Project.StatusReported)
    assert event.status_date == date(2026, 5, 31)


def test_status_date_is_optional_on_the_wire_and_checked_when_given() -> None:
    schema = data_schemas()[TOPIC]
    assert "status_date" in schema["properties"]
    assert "status_date" not in schema["required"]  # every v1 publisher stays valid
    model, to_command = TYPES[TOPIC]
    wire = {"overall": "green", "scope": "green", "schedule": "amber", "budget": "red",
            "percent_complete": "10", "summary": "ok"}
    command = to_command("P-UP", model.model_validate(wire))
    assert isinstance(command, ReportStatus) and command.status_date is None
    command = to_command("P-UP", model.model_validate({**wire, "status_date": "2026-02-27"}))
    assert isinstance(command, ReportStatus) and command.status_date == date(2026, 2, 27)
    with pytest.raises(ValidationError):
        model.model_validate({**wire, "status_date": "2026-02-30"})
