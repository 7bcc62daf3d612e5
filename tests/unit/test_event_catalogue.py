"""The event catalogue, the data schemas, the domain and the folds agree (STYLE 14).

``disagreements`` joins everything that names an event type and lists each mismatch;
the real wiring must give none, and each broken copy below must be reported, so the
check is known to fail when they drift apart.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any, get_args
from uuid import UUID

from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    UUIDAsHex,
)
from pydantic import BaseModel

from api.documents import ByState, State
from domain import commands as c
from domain.base import PmoCreated, PmoEvent
from domain.catalogue import (
    BY_COMMAND,
    CATALOGUE,
    CONSEQUENCES,
    CREATES,
    EventSpec,
    aggregate_of,
    domain_events,
    topic_of,
)
from domain.manager import Manager
from domain.portfolio import Portfolio
from domain.program import Program
from domain.project import ALLOWED_FROM, Project
from domain.values import Colour, PmoType, ProjectState, transcodings
from ingest.cloudevents import parse_structured
from ingest.jsonschemas import schema_of
from ingest.schemas import TYPES
from ingest.service import to_command
from pmo.demo_data import generate
from projections import folds, views
from projections.aggregates import ManagerProjection, PortfolioProjection, ProgramProjection
from projections.documents import Fig, ManagerDoc, PortfolioDoc, ProgramDoc, ProjectDoc
from projections.feed import RecordedEvent, to_recorded
from projections.projects import ProjectProjection, fig_of, fig_row
from tests.unit.fakes import FakeAggregates, envelope

# CONTRACT section 3: each type with its data fields ("?": optional).
CONTRACT = {
    "pmo.portfolio.opened": "name pmo_type currency budget_envelope owner",
    "pmo.portfolio.objective_set": "objective_id title weight",
    "pmo.manager.registered": "name capacity grade?",
    "pmo.manager.capacity_changed": "capacity",
    "pmo.manager.left_pool": "reason?",
    "pmo.program.launched": "portfolio_id name manager_id?",
    "pmo.project.proposed": "portfolio_id program_id? name sponsor budget_requested "
                            "planned_start planned_finish objectives? priority?",
    "pmo.project.approved": "approved_budget approver",
    "pmo.project.rejected": "reason",
    "pmo.project.manager_assigned": "manager_id",
    "pmo.project.started": "started_on",
    "pmo.project.put_on_hold": "reason",
    "pmo.project.resumed": "",
    "pmo.project.budget_changed": "approved_budget reason",
    "pmo.project.cost_recorded": "amount currency incurred_on category reference",
    "pmo.project.forecast_updated": "estimate_at_completion",
    "pmo.project.schedule_changed": "planned_finish reason",
    "pmo.project.milestone_planned": "milestone_id name due",
    "pmo.project.milestone_achieved": "milestone_id achieved_on",
    # status_date: the event's v2 (docs/api.md, schema evolution), optional on the wire
    "pmo.project.status_reported":
        "overall scope schedule budget percent_complete summary status_date?",
    "pmo.project.risk_raised": "risk_id title probability impact",
    "pmo.project.risk_closed": "risk_id resolution",
    "pmo.project.completed": "finished_on outcome?",
    "pmo.project.cancelled": "reason",
}

# Which view folds the events of which aggregate, and the topics that view reads.
FOLDS_BY_AGGREGATE: dict[type[Any], tuple[tuple[str, ...], dict[type[PmoEvent], Any]]] = {
    Project: (ProjectProjection.topics, folds.PROJECT_STEPS),
    Portfolio: (PortfolioProjection.topics, folds.PORTFOLIO_STEPS),
    Program: (ProgramProjection.topics, {}),
    Manager: (ManagerProjection.topics, folds.MANAGER_STEPS),
}


@dataclass(frozen=True)
class Wiring:
    """Everything that names an event type or a project state, as the service has it."""

    catalogue: tuple[EventSpec, ...] = CATALOGUE
    consequences: dict[type[PmoEvent], str] = field(default_factory=lambda: dict(CONSEQUENCES))
    types: dict[str, tuple[type[BaseModel], Any]] = field(default_factory=lambda: dict(TYPES))
    folded: dict[type[PmoEvent], str] = field(default_factory=folds.folded)
    not_folded: dict[type[PmoEvent], str] = field(default_factory=lambda: dict(folds.NOT_FOLDED))
    states: tuple[str, ...] = views.STATES
    state_sets: tuple[frozenset[str], ...] = (views.LIVE, views.BUDGET_HOLDING, views.TERMINAL)
    api_states: tuple[str, ...] = get_args(State)


def _fields(spec: str) -> tuple[set[str], set[str]]:
    words = spec.split()
    return {w.rstrip("?") for w in words}, {w for w in words if not w.endswith("?")}


def disagreements(w: Wiring) -> list[str]:
    out: list[str] = []
    specs = {s.type: s for s in w.catalogue}
    # the contract's catalogue, the registry and ingest's types
    if set(CONTRACT) != set(specs):
        out.append(f"catalogue vs contract: {sorted(set(CONTRACT) ^ set(specs))}")
    if list(w.types) != [s.type for s in w.catalogue]:
        out.append("ingest's types are not the catalogue's, in its order")
    for type_ in {e["type"] for e in generate(seed=3, projects=30)} - set(specs):
        out.append(f"demo data sends {type_}, which the catalogue lacks")
    # each type's data model, as served at /v1/schemas and as the contract lists it
    for type_ in specs:
        model = w.types.get(type_, (None,))[0]
        if model is None:
            continue
        names = set(model.model_fields)
        required = {n for n, f in model.model_fields.items() if f.is_required()}
        served = schema_of(type_) or {}
        if (names, required) != (set(served.get("properties", {})),
                                 set(served.get("required", ()))):
            out.append(f"{type_}: its model is not the schema /v1/schemas serves")
        if type_ in CONTRACT and (names, required) != _fields(CONTRACT[type_]):
            out.append(f"{type_}: data fields {sorted(names)} differ from the contract's")
    # the domain: commands, their events, and every other event's reason to exist
    known = set(domain_events())
    twice = Counter(s.command for s in w.catalogue) + Counter(s.event for s in w.catalogue)
    out += [f"{k.__qualname__} is in the catalogue twice" for k, n in twice.items() if n > 1]
    for spec in w.catalogue:
        if spec.event not in known:
            out.append(f"{spec.type}: {spec.event.__qualname__} is no stored domain event")
    asked = {s.event for s in w.catalogue}
    for event in known - asked - set(w.consequences):
        out.append(f"{event.__qualname__}: neither asked by a type nor a declared consequence")
    for event, why in w.consequences.items():
        if event in asked or not why:
            out.append(f"{event.__qualname__}: a consequence that is asked, or without why")
    # the folds: every event is folded or declared not folded, by the view of its aggregate
    for event in known:
        if (event in w.folded) == (event in w.not_folded):
            out.append(f"{event.__qualname__}: folded and not folded, or neither")
    for event, why in w.not_folded.items():
        if not why:
            out.append(f"{event.__qualname__}: not folded, without why")
    for aggregate, (prefixes, steps) in FOLDS_BY_AGGREGATE.items():
        for event in steps:
            if aggregate_of(event) is not aggregate or not topic_of(event).startswith(prefixes):
                out.append(f"{event.__qualname__}: folded by the {aggregate.__name__} view, "
                           "which does not read it")
    # project states: the read side's spellings are ProjectState's values
    values = tuple(s.value for s in ProjectState)
    if w.states != values or w.api_states != values:
        out.append(f"states {w.states} / API {w.api_states} are not ProjectState's {values}")
    for subset in w.state_sets:
        if not subset <= set(values):
            out.append(f"state set {sorted(subset)} names no ProjectState")
    return out


def test_the_catalogue_schemas_domain_and_folds_agree() -> None:
    assert disagreements(Wiring()) == []


class Stray(PmoEvent):
    """An event class nested in no aggregate: the store would never load it back."""

    TOPIC = "pmo.test.stray"


def test_each_kind_of_drift_is_reported() -> None:
    no_cost = tuple(s for s in CATALOGUE if s.command is not c.RecordCost)
    broken = {
        "catalogue vs contract": Wiring(catalogue=no_cost),
        "ingest's types are not the catalogue's": Wiring(
            types={k: v for k, v in TYPES.items() if k != "pmo.project.resumed"}),
        "not the schema /v1/schemas serves": Wiring(types={
            **TYPES, "pmo.project.rejected": TYPES["pmo.project.approved"]}),
        "no stored domain event": Wiring(catalogue=(
            *no_cost, EventSpec(c.RecordCost, Stray, CATALOGUE[0].decide))),
        "in the catalogue twice": Wiring(catalogue=(*CATALOGUE, CATALOGUE[-1])),
        "neither asked by a type nor a declared consequence": Wiring(consequences={
            k: v for k, v in CONSEQUENCES.items() if k is not Portfolio.BudgetReleased}),
        "folded and not folded, or neither": Wiring(folded={
            k: v for k, v in folds.folded().items() if k is not Project.RiskClosed}),
        "not ProjectState's": Wiring(states=(*views.STATES, "archived")),
        "names no ProjectState": Wiring(state_sets=(frozenset({"live"}),)),
    }
    for expected, wiring in broken.items():
        found = disagreements(wiring)
        assert any(expected in line for line in found), (expected, found)


def test_ingest_builds_the_command_its_type_names() -> None:
    """Every demo event, and one of each type the demo never sends, becomes the catalogue's
    command for its type."""
    commands = {s.type: s.command for s in CATALOGUE}
    events = generate(seed=3, projects=30) + [
        {"type": t, "data": d} for t, d in (
            ("pmo.manager.capacity_changed", {"capacity": 3}),
            ("pmo.manager.left_pool", {}),
            ("pmo.project.budget_changed", {"approved_budget": "10", "reason": "r"}))]
    seen = set()
    for event in events:
        message = {"specversion": "1.0", "id": "1", "source": "s", "subject": "X",
                   "time": "2026-01-01T00:00:00Z", **event}
        _, command = to_command(parse_structured(message))
        assert type(command) is commands[event["type"]], event["type"]
        seen.add(event["type"])
    assert seen == set(commands)


G = Colour.GREEN
# One story through every command, in an order the rules allow.
STORY: list[c.Command] = [
    c.OpenPortfolio("P", "Pf", PmoType.DIRECTIVE, "EUR", Decimal("1000"), "o"),
    c.SetObjective("P", "O1", "Grow", Decimal("0.5")),
    c.RegisterManager("M1", "Ann", 3),
    c.ChangeCapacity("M1", 4),
    c.LaunchProgram("G1", "P", "Programme"),
    *(c.ProposeProject(k, "P", k, "sp", Decimal("100"), date(2026, 1, 1), date(2026, 12, 31))
      for k in ("X1", "X2", "X3")),
    c.ApproveProject("X1", Decimal("90"), "cfo"),
    c.AssignManager("X1", "M1"),
    c.StartProject("X1", date(2026, 1, 2)),
    c.PutProjectOnHold("X1", "wait"),
    c.ResumeProject("X1"),
    c.ChangeBudget("X1", Decimal("95"), "more"),
    c.RecordCost("X1", Decimal("10"), "EUR", date(2026, 2, 1), "labour", "r1"),
    c.UpdateForecast("X1", Decimal("100")),
    c.ChangeSchedule("X1", date(2026, 11, 30), "sooner"),
    c.PlanMilestone("X1", "MS1", "Go", date(2026, 6, 1)),
    c.AchieveMilestone("X1", "MS1", date(2026, 6, 1)),
    c.ReportStatus("X1", G, G, G, G, Decimal("50"), "ok"),
    c.RaiseRisk("X1", "R1", "vendor", Decimal("0.5"), 3),
    c.CloseRisk("X1", "R1", "done"),
    c.CompleteProject("X1", date(2026, 12, 1)),
    c.RejectProject("X2", "no"),
    c.CancelProject("X3", "no"),
    c.LeavePool("M1"),
]


def wrong_answers(catalogue: tuple[EventSpec, ...]) -> list[str]:
    """Commands whose decision's newest event is not the event their entry names."""
    specs = {s.command: s for s in catalogue}
    aggs = FakeAggregates()
    out = [f"{cmd.__name__} is in no story" for cmd in set(specs) - {type(x) for x in STORY}]
    for command in STORY:
        spec = specs[type(command)]
        aggregate = spec.decide(command, envelope(), aggs)
        newest = aggregate.pending_events[-1]
        if type(newest) is not spec.event:
            out.append(f"{spec.type}: records {type(newest).__qualname__}, "
                       f"not {spec.event.__qualname__}")
    return out


def test_each_command_records_the_event_its_entry_names() -> None:
    assert wrong_answers(CATALOGUE) == []
    swapped = tuple(replace(s, event=Project.ForecastUpdated) if s.command is c.RecordCost
                    else s for s in CATALOGUE)
    assert wrong_answers(swapped) == [
        "pmo.project.forecast_updated: records Project.CostRecorded, "
        "not Project.ForecastUpdated"]


def test_creating_commands_and_the_lifecycle_follow_the_domain() -> None:
    assert {c.OpenPortfolio: Portfolio, c.RegisterManager: Manager, c.LaunchProgram: Program,
            c.ProposeProject: Project} == CREATES
    assert all(issubclass(BY_COMMAND[k].event, PmoCreated) for k in CREATES)
    # every project event after the first has its lifecycle rule, under its own name
    names = {topic_of(e).removeprefix(f"{Project.TOPIC}.") for e in domain_events()
             if aggregate_of(e) is Project and e is not Project.Proposed}
    assert names == set(ALLOWED_FROM)
    assert set(ByState.model_fields) == {s.value for s in ProjectState}


def _recorded(stories: list[c.Command]) -> list[RecordedEvent]:
    """The events the story decides, as the views receive them (stored JSON, in order)."""
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), *transcodings()):
        transcoder.register(transcoding)
    mapper: Mapper[UUID] = Mapper(transcoder=transcoder)
    aggs = FakeAggregates()
    for command in stories:
        aggs.run(command)
    events = sorted((e for a in aggs.by_id.values() for e in a.pending_events),
                    key=lambda e: e.timestamp)
    return [to_recorded(mapper, n, mapper.to_stored_event(e)) for n, e in enumerate(events, 1)]


def test_the_document_types_are_what_the_folds_keep() -> None:
    docs: dict[str, dict[str, Any]] = {}
    shapes = {Project: (folds.fold_project, ProjectDoc), Portfolio: (folds.fold_portfolio,
              PortfolioDoc), Program: (folds.fold_program, ProgramDoc),
              Manager: (folds.fold_manager, ManagerDoc)}
    kinds = {f"{a.TOPIC}.": a for a in shapes}
    for e in _recorded(STORY):
        aggregate = next((a for p, a in kinds.items() if e.topic.startswith(p)), None)
        if aggregate is not None:
            fold, shape = shapes[aggregate]
            doc = fold(docs.get(e.oid_hex), e)  # type: ignore[arg-type]
            assert doc is not None
            docs[e.oid_hex] = doc  # type: ignore[assignment]
            assert set(doc) <= shape.__required_keys__ | shape.__optional_keys__, e.topic
            assert set(doc) >= shape.__required_keys__ - {"valid_us"}, e.topic
    assert len(docs) == 6  # one portfolio, one manager, one programme, three projects
    assert {d["state"] for d in docs.values() if "state" in d} <= set(views.STATES)


def test_a_figure_row_reads_back_field_by_field() -> None:
    [e] = [e for e in _recorded(STORY[:6]) if e.topic == topic_of(Project.Proposed)]
    doc = folds.fold_project(None, e)
    assert doc is not None
    doc.update(approved_budget="90", forecast_eac="100", percent_complete="50",
               baseline_finish="2026-12-31", finished_on="2026-12-01", manager_id="M1",
               program_id="G1", health={**doc["health"], "overall": "green"})
    fig = fig_of(doc)
    assert fig == Fig(key=doc["project_id"], state=doc["state"], overall="green", bac="90",
                      ac=doc["actual_cost"], percent_complete="50", forecast_eac="100",
                      planned_start=doc["planned_start"], baseline_finish="2026-12-31",
                      finished_on="2026-12-01", manager_id="M1", program_id="G1",
                      objectives=[])
    assert list(fig) == fig_row(doc)  # stored as that list, read back as the row
