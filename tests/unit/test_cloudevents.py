"""Reading CloudEvents: envelopes in both content modes, and each type's data schema."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from domain import commands as c
from ingest.cloudevents import (
    MalformedEventError,
    binary_attributes,
    parse_binary,
    parse_structured,
)
from ingest.schemas import TYPES
from ingest.service import to_command


def cloudevent(type_: str = "pmo.project.cost_recorded", **data: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": "e-1", "source": "finance/sap", "type": type_,
            "subject": "P-1", "time": "2026-03-01T10:15:00+02:00", "actor": "bob",
            "data": data or {"amount": "1234.50", "currency": "EUR", "incurred_on": "2026-02-28",
                             "category": "vendor", "reference": "INV-9"}}


def test_structured_event_becomes_a_command_with_exact_money_and_utc_time() -> None:
    envelope, command = to_command(parse_structured(orjson.dumps(cloudevent())))
    assert command == c.RecordCost("P-1", Decimal("1234.50"), "EUR",
                                   datetime(2026, 2, 28).date(), "vendor", "INV-9")
    assert envelope.time == datetime(2026, 3, 1, 8, 15, tzinfo=UTC)
    assert (envelope.source, envelope.event_id, envelope.actor) == ("finance/sap", "e-1", "bob")


def test_binary_mode_headers_carry_the_envelope() -> None:
    event = cloudevent()
    headers = [(f"ce_{k}", v) for k, v in event.items() if k != "data"]
    headers.append(("content-type", "application/json"))
    attributes = binary_attributes(headers, "ce_")
    assert attributes is not None
    parsed = parse_binary(attributes, orjson.dumps(event["data"]))
    assert parsed == parse_structured(event)


def test_structured_content_type_wins_over_stray_ce_headers() -> None:
    headers = [("ce_specversion", "1.0"), ("content-type", "application/cloudevents+json")]
    assert binary_attributes(headers, "ce_") is None


@pytest.mark.parametrize(("raw", "fragment"), [
    (b"{not json", "not valid JSON"),
    (orjson.dumps({**cloudevent(), "specversion": "0.3"}), "specversion"),
    (orjson.dumps({k: v for k, v in cloudevent().items() if k != "subject"}), "subject"),
    (orjson.dumps({**cloudevent(), "time": "2026-03-01T10:15:00"}), "time"),
])
def test_malformed_envelopes_are_refused_with_where_and_what(raw: bytes, fragment: str) -> None:
    with pytest.raises(MalformedEventError) as refused:
        parse_structured(raw)
    assert fragment in str(refused.value)


@pytest.mark.parametrize(("data", "fragment"), [
    ({"amount": 1234.5, "currency": "EUR", "incurred_on": "2026-02-28", "category": "v",
      "reference": "r"}, "decimal string"),
    ({"amount": "-1", "currency": "EUR", "incurred_on": "2026-02-28", "category": "v",
      "reference": "r"}, "amount"),
    ({"amount": "1", "currency": "euro", "incurred_on": "2026-02-28", "category": "v",
      "reference": "r"}, "currency"),
    ({"amount": "1", "currency": "EUR", "incurred_on": "2026-02-28", "category": "v",
      "reference": "r", "extra": 1}, "extra"),
    ({"amount": "NaN", "currency": "EUR", "incurred_on": "2026-02-28", "category": "v",
      "reference": "r"}, "amount"),
])
def test_schema_invalid_data_is_refused_with_the_field(data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(MalformedEventError) as refused:
        to_command(parse_structured(cloudevent(**data)))
    assert fragment in str(refused.value)


def test_unknown_type_is_refused() -> None:
    with pytest.raises(MalformedEventError, match="unknown event type"):
        to_command(parse_structured(cloudevent("pmo.project.teleported", x=1)))


def test_every_contract_type_has_a_schema() -> None:
    contract = {"pmo.portfolio.opened", "pmo.portfolio.objective_set", "pmo.manager.registered",
                "pmo.manager.capacity_changed", "pmo.manager.left_pool", "pmo.program.launched",
                *(f"pmo.project.{e}" for e in (
                    "proposed", "approved", "rejected", "manager_assigned", "started",
                    "put_on_hold", "resumed", "budget_changed", "cost_recorded",
                    "forecast_updated", "schedule_changed", "milestone_planned",
                    "milestone_achieved", "status_reported", "risk_raised", "risk_closed",
                    "completed", "cancelled"))}
    assert set(TYPES) == contract
