"""A synthetic but realistic inbound stream: portfolios, a manager pool, project lifecycles."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from ingest.cloudevents import parse_structured
from ingest.service import Inbound


def topic_prefix() -> str:
    """A fresh topic prefix in the test runs' scratch format (``tests/kafka_support.SCRATCH``,
    the second it was made): a test session started while a benchmark runs deletes only
    scratch topics hours old, so it leaves these alone until a killed run left them."""
    return f"t{int(time.time())}x{uuid.uuid4().hex[:6]}."


def event(n: int, type_: str, subject: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"bench-{n}", "source": "bench/generator",
            "type": type_, "subject": subject, "time": "2026-01-05T09:00:00Z", "data": data}


def lifecycle_stream(projects: int, costs_per_project: int = 6) -> list[dict[str, Any]]:
    """One directive portfolio, a pool, and per project: propose, approve, assign, start, costs."""
    out = [event(0, "pmo.portfolio.opened", "BENCH-PF", {
        "name": "Bench", "pmo_type": "directive", "currency": "EUR",
        "budget_envelope": "1000000000000", "owner": "pmo-office"})]
    managers = max(1, projects // 50)
    for m in range(managers):
        out.append(event(len(out), "pmo.manager.registered", f"M{m}",
                         {"name": f"Manager {m}", "capacity": 1000}))
    for p in range(projects):
        subject = f"BENCH-P{p}"
        steps: list[tuple[str, dict[str, Any]]] = [
            ("pmo.project.proposed", {
                "portfolio_id": "BENCH-PF", "name": f"Project {p}", "sponsor": "sponsor",
                "budget_requested": "100000", "planned_start": "2026-01-01",
                "planned_finish": "2026-12-31"}),
            ("pmo.project.approved", {"approved_budget": "90000", "approver": "board"}),
            ("pmo.project.manager_assigned", {"manager_id": f"M{p % managers}"}),
            ("pmo.project.started", {"started_on": "2026-01-10"}),
        ]
        steps += [("pmo.project.cost_recorded", {
            "amount": "1234.56", "currency": "EUR", "incurred_on": "2026-02-01",
            "category": "labour", "reference": f"INV-{p}-{k}"}) for k in range(costs_per_project)]
        steps.append(("pmo.project.status_reported", {
            "overall": "green", "scope": "green", "schedule": "amber", "budget": "green",
            "percent_complete": 40, "summary": "on track"}))
        out += [event(len(out) + i, t, subject, d) for i, (t, d) in enumerate(steps)]
    return out


def as_inbound(events: list[dict[str, Any]]) -> list[Inbound]:
    return [Inbound(orjson.dumps(e), parse_structured(e)) for e in events]
