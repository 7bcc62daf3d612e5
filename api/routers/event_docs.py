"""OpenAPI documentation of ``POST /v1/events``: the body is read raw, so it is described here."""

from __future__ import annotations

from typing import Any

_EVENT: dict[str, Any] = {
    "specversion": "1.0", "id": "jira-4711", "source": "urn:jira:pmo",
    "type": "pmo.project.proposed", "subject": "PRJ-042", "time": "2026-03-02T09:30:00Z",
    "datacontenttype": "application/json", "actor": "alice@example.com",
    "data": {"portfolio_id": "PF-EU", "name": "CRM migration", "sponsor": "COO",
             "budget_requested": "250000.00", "planned_start": "2026-04-01",
             "planned_finish": "2026-12-15", "priority": 2},
}
_COST: dict[str, Any] = {
    "specversion": "1.0", "id": "sap-90001", "source": "urn:finance:sap",
    "type": "pmo.project.cost_recorded", "subject": "PRJ-042", "time": "2026-05-31T18:00:00Z",
    "data": {"amount": "18250.00", "currency": "EUR", "incurred_on": "2026-05-31",
             "category": "labour", "reference": "INV-2026-0531"},
}
_PROBLEM = {"application/problem+json": {"schema": {"type": "object"}}}


def _problem(example: dict[str, Any]) -> dict[str, Any]:
    return {"application/problem+json": {"schema": {"type": "object"}, "example": example}}


OPENAPI: dict[str, Any] = {
    "request": {"requestBody": {"required": True, "content": {
        "application/cloudevents+json": {"schema": {"type": "object"},
                                         "examples": {"one event": {"value": _EVENT}}},
        "application/cloudevents-batch+json": {"schema": {"type": "array"},
                                               "examples": {"batch": {"value": [_EVENT, _COST]}}},
        "application/json": {"schema": {}, "examples": {"one event": {"value": _EVENT},
                                                        "batch": {"value": [_EVENT, _COST]}}},
    }}},
    "responses": {
        201: {"description": "stored", "content": {"application/json": {"example": {
            "id": "jira-4711", "source": "urn:jira:pmo", "status": "accepted",
            "position": 1042}}}},
        200: {"description": "a duplicate (answers as the first time), or a batch's results",
              "content": {"application/json": {"examples": {
                  "duplicate": {"value": {"id": "jira-4711", "source": "urn:jira:pmo",
                                          "status": "duplicate", "position": 1042}},
                  "batch": {"value": {"results": [
                      {"id": "jira-4711", "status": "accepted", "position": 1042},
                      {"id": "sap-90001", "status": "rejected", "position": None,
                       "reason": "event 'cost_recorded' is not allowed for a project in "
                                 "state 'proposed'", "code": "transition-not-allowed"}]}}}}}},
        202: {"description": "queued to Kafka (Kafka mode)"},
        400: {"description": "not JSON, or not a CloudEvent", "content": _problem({
            "type": "https://pmo-ledger.dev/problems/malformed-event",
            "title": "Malformed CloudEvent", "status": 400,
            "detail": "specversion: Field required", "reason": "specversion: Field required"})},
        401: {"description": "no valid API key", "content": _PROBLEM},
        403: {"description": "the key lacks the publisher role", "content": _PROBLEM},
        409: {"description": "refused by the PMO's rules", "content": _problem({
            "type": "https://pmo-ledger.dev/problems/over-budget-envelope",
            "title": "Rejected by the PMO's rules", "status": 409,
            "reason": "budget 900000 EUR exceeds the 120000 EUR left in the portfolio's "
                      "budget envelope"})},
        413: {"description": "body over PMO_MAX_BODY_BYTES", "content": _PROBLEM},
        415: {"description": "not a CloudEvents content type, or a Content-Encoding other "
                             "than identity", "content": _PROBLEM},
        422: {"description": "the data does not fit its type's schema, or the type is unknown",
              "content": _problem({
                  "type": "https://pmo-ledger.dev/problems/invalid-event-data",
                  "title": "Invalid event data", "status": 422,
                  "reason": "data.amount: Value error, money must be a decimal string"})},
    },
}
