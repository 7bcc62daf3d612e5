"""Property: whatever events are poisoned, and however the log is cut into batches, every
aggregate without a poisoned event has exactly the view a clean fold of its events gives;
a poisoned one keeps the fold of its events before the first poisoned one, and holds the
rest, in order. Two kinds of poison: an event the fold raises on, and one that makes the
view's row unwritable (found by bisection, not named by the error)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.aggregates import ManagerProjection
from projections.db import Db, Tx
from projections.feed import RecordedEvent
from projections.folds import Doc, fold_all, fold_manager
from storage.urls import StoreUrl

NAMESPACE = UUID("0b7c4f55-0d8e-4c16-9d7e-5d6f1f4bdb3a")
START = datetime(2026, 1, 1, tzinfo=UTC)


class PoisonedManagers(ManagerProjection):
    """The manager projection with two test-only bugs: it cannot fold an event marked
    ``fold_poison``, and cannot write a doc that has seen an event marked ``taint``."""

    @staticmethod
    def fold(doc: Doc | None, e: RecordedEvent) -> Doc | None:
        if e.payload.get("fold_poison"):
            raise KeyError("fold_poison")
        new = fold_manager(doc, e)
        if new is not None and e.payload.get("taint"):
            new["tainted"] = True
        return new

    def write(self, tx: Tx, changed: dict[str, Doc]) -> None:
        if any(d.get("tainted") for d in changed.values()):
            raise ValueError("a tainted doc")
        super().write(tx, changed)


@dataclass(frozen=True)
class Plan:
    """Per aggregate, its events' kinds ("" healthy, "fold", "taint"); then the order in
    which aggregates take turns, and where the log is cut into batches."""

    aggregates: list[list[tuple[str, str]]]  # (event kind, poison) in version order
    turns: list[int]
    cuts: list[int]


KINDS = ("capacity_changed", "left_pool", "project_assigned", "project_released")
poison = st.sampled_from(["", "", "", "", "fold", "taint"])


@st.composite
def plans(draw: Any) -> Plan:
    aggregates = []
    for _ in range(draw(st.integers(1, 4))):
        first = ("registered", draw(poison))
        rest = draw(st.lists(st.tuples(st.sampled_from(KINDS), poison), max_size=6))
        aggregates.append([first, *rest])
    turns = draw(st.permutations([i for i, events in enumerate(aggregates) for _ in events]))
    total = len(turns)
    cuts = sorted(set(draw(st.lists(st.integers(1, max(total - 1, 1)), max_size=4))))
    return Plan(aggregates, turns, cuts)


def payload(kind: str, key: str, version: int, mark: str, at: datetime) -> dict[str, Any]:
    body: dict[str, Any] = {"timestamp": {"_type_": "datetime_iso", "_data_": at.isoformat()},
                            "originator_version": version}
    if kind == "registered":
        body.update(key=key, name=f"Manager {key}", capacity=3, grade=None)
    elif kind == "capacity_changed":
        body["capacity"] = version + 1
    elif kind in ("project_assigned", "project_released"):
        body["project_id"] = f"P{version % 3}"
    if mark == "fold":
        body["fold_poison"] = True
    elif mark == "taint":
        body["taint"] = True
    return body


def log_of(plan: Plan) -> tuple[list[RecordedEvent], dict[str, list[tuple[RecordedEvent, str]]]]:
    next_version = [0] * len(plan.aggregates)
    log: list[RecordedEvent] = []
    by_aggregate: dict[str, list[tuple[RecordedEvent, str]]] = {}
    for position, turn in enumerate(plan.turns, 1):
        kind, mark = plan.aggregates[turn][next_version[turn]]
        next_version[turn] += 1
        key = f"M{turn}"
        oid = uuid5(NAMESPACE, key)
        at = START + timedelta(seconds=position)
        e = RecordedEvent(position, oid, next_version[turn], f"pmo.manager.{kind}",
                          orjson.dumps(payload(kind, key, next_version[turn], mark, at)),
                          None, position - 1)
        log.append(e)
        by_aggregate.setdefault(oid.hex, []).append((e, mark))
    return log, by_aggregate


@pytest.fixture
def projection(store_url: str) -> Iterator[PoisonedManagers]:
    """On each backend; every example starts from an empty view (``clear``)."""
    db = Db(StoreUrl.parse(store_url))
    projection = PoisonedManagers(db)
    projection.create_tables()
    yield projection
    db.close()


@settings(max_examples=40, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(plan=plans())
def test_views_of_unpoisoned_aggregates_equal_a_clean_fold(
        projection: PoisonedManagers, plan: Plan) -> None:
    log, by_aggregate = log_of(plan)
    projection.clear()
    db = projection.db
    bounds = [0, *plan.cuts, len(log)]
    for start, end in itertools.pairwise(bounds):
        if end > start:
            projection.process(log[start:end], {"store": log[end - 1].position})
    docs = {i: orjson.loads(d) for i, d in db.query("SELECT id, doc FROM pv_managers")}
    quarantined = {a: int(p) for a, p in db.query(
        "SELECT aggregate, first_position FROM pv_quarantine WHERE projection = 'managers'")}
    held: dict[str, list[int]] = {}
    for a, p in db.query("SELECT aggregate, position FROM pv_quarantine_held "
                         "ORDER BY position"):
        held.setdefault(a, []).append(int(p))
    assert projection.tracking()["store"] == len(log)  # the position never stalls
    for oid, events in by_aggregate.items():
        bad = next((n for n, (_, mark) in enumerate(events) if mark), None)
        good = [e for e, _ in events[:bad]]
        assert docs.get(oid) == fold_all(fold_manager, good), (oid, events)
        if bad is None:
            assert oid not in quarantined and oid not in held
        else:
            assert quarantined[oid] == events[bad][0].position
            assert held[oid] == [e.position for e, _ in events[bad:]]
