"""The JSON views of CONTRACT section 8, rendered from docs and figures.

Pure: the same functions render live views and views as of an instant, so the
two differ only in their inputs. Money is a decimal string, ratios numbers
(None when undefined), dates ISO 8601.

Where the contract leaves room: a portfolio's ``approved_budget`` sums its
approved, active, on_hold and completed projects (what the envelope counts);
``budget_share`` of an objective is the sum, over those projects, of approved
budget x the project's contribution to the objective, divided by the
portfolio's approved budget (None while that is 0). A manager's
``budget_variance`` sums BAC - EAC over the projects they are assigned to.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from projections.folds import Doc
from projections.kpi import ZERO, Kpis, on_time_rate, project_kpis, ratio, roll_up
from projections.projects import (
    F_BAC,
    F_BASELINE,
    F_FINISHED,
    F_OBJECTIVES,
    F_OVERALL,
    F_STATE,
    fig_of,
    figures,
)

STATES = ("proposed", "approved", "rejected", "active", "on_hold", "completed", "cancelled")
LIVE = frozenset({"approved", "active", "on_hold"})
BUDGET_HOLDING = LIVE | {"completed"}
TERMINAL = frozenset({"rejected", "completed", "cancelled"})


def _s(amount: Decimal | None) -> str | None:
    return None if amount is None else str(amount)


def _num(text: str | None) -> float | int | None:
    if text is None:
        return None
    d = Decimal(text)
    return int(d) if d == d.to_integral_value() else float(d)


def project_view(doc: Doc, on: date) -> dict[str, Any]:
    k = project_kpis(figures(fig_of(doc)), on)
    return {
        "project_id": doc["project_id"], "portfolio_id": doc["portfolio_id"],
        "program_id": doc["program_id"], "name": doc["name"], "sponsor": doc["sponsor"],
        "state": doc["state"], "manager_id": doc["manager_id"], "priority": doc["priority"],
        "budget_requested": doc["budget_requested"], "approved_budget": doc["approved_budget"],
        "actual_cost": doc["actual_cost"], "estimate_at_completion": _s(k.eac),
        "earned_value": str(k.ev), "planned_value": str(k.pv),
        "planned_start": doc["planned_start"], "planned_finish": doc["planned_finish"],
        "baseline_finish": doc["baseline_finish"], "started_on": doc["started_on"],
        "finished_on": doc["finished_on"], "health": doc["health"],
        "percent_complete": _num(doc["percent_complete"]),
        "milestones": [{"milestone_id": m_id, **m} for m_id, m in doc["milestones"].items()],
        "open_risks": [{"risk_id": r_id, "title": r["title"],
                        "probability": _num(r["probability"]), "impact": r["impact"]}
                       for r_id, r in doc["open_risks"].items()],
        "objectives": [{"objective_id": o["objective_id"],
                        "contribution": _num(o["contribution"])} for o in doc["objectives"]],
        "version": doc["version"], "cpi": k.cpi, "spi": k.spi,
        "updated_at": doc["updated_at"],
    }


# A project's figures (see ``projections.projects.fig_of``) with its KPIs on the day asked.
Evaluated = Sequence[tuple[Sequence[Any], Kpis]]


def rollup(rows: Evaluated) -> dict[str, Any]:
    """The figures every roll-up shows: sums, ratios of sums, counts by state and health."""
    figs = [f for f, _ in rows]
    totals = roll_up(k for _, k in rows)
    by_state = dict.fromkeys(STATES, 0)
    by_health = {"green": 0, "amber": 0, "red": 0, "unknown": 0}
    approved = ZERO
    for f in figs:
        by_state[f[F_STATE]] += 1
        if f[F_STATE] in LIVE:
            by_health[f[F_OVERALL] or "unknown"] += 1
        if f[F_STATE] in BUDGET_HOLDING and f[F_BAC] is not None:
            approved += Decimal(f[F_BAC])
    return {
        "approved_budget": str(approved), "actual_cost": str(totals.ac),
        "estimate_at_completion": str(totals.eac), "budget_at_completion": str(totals.bac),
        "earned_value": str(totals.ev), "planned_value": str(totals.pv),
        "cpi": totals.cpi, "spi": totals.spi, "project_count": len(figs),
        "projects_by_state": by_state, "projects_by_health": by_health,
    }


def portfolio_view(doc: Doc, rows: Evaluated) -> dict[str, Any]:
    figures_ = rollup(rows)
    approved = Decimal(figures_["approved_budget"])
    shares: dict[str, Decimal] = {}
    for f, _ in rows:
        if f[F_STATE] in BUDGET_HOLDING and f[F_BAC] is not None:
            for objective_id, contribution in f[F_OBJECTIVES]:
                shares[objective_id] = (shares.get(objective_id, ZERO)
                                        + Decimal(f[F_BAC]) * Decimal(contribution))
    envelope = Decimal(doc["budget_envelope"])
    return {
        "portfolio_id": doc["portfolio_id"], "name": doc["name"], "pmo_type": doc["pmo_type"],
        "currency": doc["currency"], "owner": doc["owner"],
        "budget_envelope": doc["budget_envelope"],
        "remaining_envelope": str(envelope - approved), **figures_,
        "objectives": [{"objective_id": o_id, "title": o["title"], "weight": _num(o["weight"]),
                        "budget_share": ratio(shares.get(o_id, ZERO), approved)}
                       for o_id, o in doc["objectives"].items()],
        "version": doc["version"],
    }


def program_view(doc: Doc, rows: Evaluated) -> dict[str, Any]:
    return {"program_id": doc["program_id"], "portfolio_id": doc["portfolio_id"],
            "name": doc["name"], "manager_id": doc["manager_id"],
            "projects": sorted(f[0] for f, _ in rows), **rollup(rows),
            "version": doc["version"]}


def manager_view(doc: Doc, rows: Evaluated) -> dict[str, Any]:
    """``rows``: the projects whose current manager this is (terminal ones included)."""
    variance = sum(((k.bac - (k.eac if k.eac is not None else k.bac)) for _, k in rows), ZERO)
    completed = [(f[F_FINISHED], f[F_BASELINE]) for f, _ in rows if f[F_STATE] == "completed"]
    return {
        "manager_id": doc["manager_id"], "name": doc["name"], "grade": doc["grade"],
        "capacity": doc["capacity"], "active_projects": len(doc["projects"]),
        "utilisation": round(len(doc["projects"]) / doc["capacity"], 4),
        "projects": list(doc["projects"]), "in_pool": doc["in_pool"],
        "completed_projects": len(completed),
        "on_time_rate": on_time_rate(
            (date.fromisoformat(a) if a else None, date.fromisoformat(b) if b else None)
            for a, b in completed),
        "budget_variance": str(variance), "version": doc["version"],
    }
