"""The published JSON Schemas (CONTRACT 12) agree with the models that validate events:
every demo event passes its schema, and data the models refuse the schemas refuse too."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from ingest.cloudevents import MalformedEventError, parse_structured
from ingest.jsonschemas import DIALECT, data_schemas, envelope_schema
from ingest.schemas import TYPES
from ingest.service import to_command
from pmo.demo_data import generate


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def test_every_type_has_a_2020_12_schema_and_money_is_a_string() -> None:
    schemas = data_schemas()
    assert list(schemas) == list(TYPES)
    for schema in schemas.values():
        assert schema["$schema"] == DIALECT
        Draft202012Validator.check_schema(schema)
    for field in ("amount", "currency"):
        assert schemas["pmo.project.cost_recorded"]["properties"][field]["type"] == "string"
    money = schemas["pmo.project.cost_recorded"]["properties"]["amount"]
    assert money["pattern"]
    assert schemas["pmo.project.approved"]["properties"]["approved_budget"]["type"] == "string"


def test_every_demo_event_validates_against_its_schemas() -> None:
    events = generate()
    envelope = validator(envelope_schema())
    by_type = {t: validator(s) for t, s in data_schemas().items()}
    for event in events:
        assert not list(envelope.iter_errors(event)), event
        assert not list(by_type[event["type"]].iter_errors(event["data"])), event
    assert {e["type"] for e in events} >= set(TYPES) - {
        "pmo.manager.capacity_changed", "pmo.manager.left_pool",
        "pmo.project.budget_changed"}


COST = {"amount": "1234.50", "currency": "EUR", "incurred_on": "2026-02-28",
        "category": "v", "reference": "r"}
REFUSED: list[tuple[str, dict[str, Any]]] = [
    # the suite's cases (tests/unit/test_cloudevents.py), then one per kind of constraint
    ("pmo.project.cost_recorded", {**COST, "amount": 1234.5}),
    ("pmo.project.cost_recorded", {**COST, "currency": "euro"}),
    ("pmo.project.cost_recorded", {**COST, "extra": 1}),
    ("pmo.project.cost_recorded", {**COST, "amount": "NaN"}),
    ("pmo.project.cost_recorded", {**COST, "amount": "12,50"}),
    ("pmo.project.cost_recorded", {**COST, "incurred_on": "2026-02-30"}),
    ("pmo.project.cost_recorded", {k: v for k, v in COST.items() if k != "reference"}),
    ("pmo.project.cost_recorded", {**COST, "category": ""}),
    ("pmo.manager.registered", {"name": "Ann", "capacity": 0}),
    ("pmo.manager.registered", {"name": "Ann", "capacity": 2.5}),
    ("pmo.project.status_reported", {"overall": "blue", "scope": "green", "schedule": "green",
                                     "budget": "green", "percent_complete": 5,
                                     "summary": "s"}),
    ("pmo.project.status_reported", {"overall": "green", "scope": "green",
                                     "schedule": "green", "budget": "green",
                                     "percent_complete": 101, "summary": "s"}),
    ("pmo.portfolio.objective_set", {"objective_id": "O", "title": "t", "weight": 0}),
    ("pmo.project.risk_raised", {"risk_id": "R", "title": "t", "probability": 1.5,
                                 "impact": 3}),
    ("pmo.project.risk_raised", {"risk_id": "R", "title": "t", "probability": "0.5",
                                 "impact": 6}),
    ("pmo.portfolio.opened", {"name": "n", "pmo_type": "advisory", "currency": "EUR",
                              "budget_envelope": "1", "owner": "o"}),
    ("pmo.project.proposed", {"portfolio_id": "PF", "name": "n", "sponsor": "s",
                              "budget_requested": "1", "planned_start": "2026-01-01",
                              "planned_finish": "2026-02-01",
                              "objectives": [{"objective_id": "O", "contribution": 2}]}),
    ("pmo.project.resumed", {"why": "no fields here"}),
]


@pytest.mark.parametrize(("type_", "data"), REFUSED)
def test_data_the_models_refuse_the_schema_refuses(type_: str, data: dict[str, Any]) -> None:
    event = {"specversion": "1.0", "id": "e", "source": "s", "type": type_, "subject": "X",
             "time": "2026-03-01T10:15:00Z", "data": data}
    with pytest.raises(MalformedEventError):
        to_command(parse_structured(event))
    assert list(validator(data_schemas()[type_]).iter_errors(data)), data
