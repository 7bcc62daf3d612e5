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

Any stored value renders: a figure that cannot be computed from it is null, and
the view's ``unavailable`` object (present only then) gives the reason by key.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from domain.values import BUDGET_HOLDING_STATES, LIVE_STATES, TERMINAL_STATES, ProjectState
from projections.documents import Fig, ManagerDoc, PortfolioDoc, ProgramDoc, ProjectDoc
from projections.kpi import (
    COMPUTE_ERRORS,
    ZERO,
    Kpis,
    Unavailable,
    exact_sum,
    on_time_rate,
    ratio,
    roll_up,
)
from projections.projects import fig_of, kpis_of

# The project states as the views spell them: the domain's ``ProjectState`` values.
STATES = tuple(s.value for s in ProjectState)
LIVE = frozenset(s.value for s in LIVE_STATES)
BUDGET_HOLDING = frozenset(s.value for s in BUDGET_HOLDING_STATES)
TERMINAL = frozenset(s.value for s in TERMINAL_STATES)
_COMPLETED = ProjectState.COMPLETED.value


def _s(amount: Decimal | None) -> str | None:
    return None if amount is None else str(amount)


def _num(text: str | None) -> float | int | None:
    """A stored decimal as a JSON number; None when it has none (not finite, unreadable)."""
    if text is None:
        return None
    try:
        d = Decimal(text)
        if not d.is_finite():
            return None
        if d == d.to_integral_value() and abs(d) < 2 ** 53:
            return int(d)
        value = float(d)
    except COMPUTE_ERRORS:
        return None
    return value if math.isfinite(value) else None


def _shown(view: dict[str, Any], unavailable: Unavailable) -> dict[str, Any]:
    if unavailable:
        view["unavailable"] = dict(unavailable)
    return view


def project_view(doc: ProjectDoc, on: date) -> dict[str, Any]:
    k = kpis_of(fig_of(doc), on)
    u = Unavailable(k.unavailable)
    view = {
        "project_id": doc["project_id"], "portfolio_id": doc["portfolio_id"],
        "program_id": doc["program_id"], "name": doc["name"], "sponsor": doc["sponsor"],
        "state": doc["state"], "manager_id": doc["manager_id"], "priority": doc["priority"],
        "budget_requested": doc["budget_requested"], "approved_budget": doc["approved_budget"],
        "actual_cost": doc["actual_cost"], "estimate_at_completion": _s(k.eac),
        "earned_value": _s(k.ev), "planned_value": _s(k.pv),
        "planned_start": doc["planned_start"], "planned_finish": doc["planned_finish"],
        "baseline_finish": doc["baseline_finish"], "started_on": doc["started_on"],
        "finished_on": doc["finished_on"], "health": doc["health"],
        "percent_complete": u.figure("percent_complete", lambda: _number(
            doc["percent_complete"])),
        "status_date": doc.get("status_date"),  # docs folded before v2 lack it until a replay
        "milestones": [{"milestone_id": m_id, **m} for m_id, m in doc["milestones"].items()],
        "open_risks": [{"risk_id": r_id, "title": r["title"],
                        "probability": _num(r["probability"]), "impact": r["impact"]}
                       for r_id, r in doc["open_risks"].items()],
        "objectives": [{"objective_id": o["objective_id"],
                        "contribution": _num(o["contribution"])} for o in doc["objectives"]],
        "version": doc["version"], "cpi": k.cpi, "spi": k.spi,
        "updated_at": doc["updated_at"],
    }
    return _shown(view, u)


def _number(text: str | None) -> float | int | None:
    """``_num``, but a stored value without a JSON number is an error (for ``unavailable``)."""
    value = _num(text)
    if value is None and text is not None:
        raise ValueError(f"no JSON number for {text[:40]!r}")
    return value


# A project's figures (see ``projections.projects.fig_of``) with its KPIs on the day asked.
Evaluated = Sequence[tuple[Fig, Kpis]]


def _approved(figs: Sequence[Fig]) -> Decimal:
    return exact_sum(Decimal(f.bac) for f in figs
                     if f.state in BUDGET_HOLDING and f.bac is not None)


def rollup(rows: Evaluated, u: Unavailable) -> dict[str, Any]:
    """The figures every roll-up shows: sums, ratios of sums, counts by state and health.
    What cannot be computed is None, with its reason added to ``u``."""
    figs = [f for f, _ in rows]
    totals = roll_up([k for _, k in rows])
    u.update(totals.unavailable)
    by_state = dict.fromkeys(STATES, 0)
    by_health = {"green": 0, "amber": 0, "red": 0, "unknown": 0}
    for f in figs:
        by_state[f.state] = by_state.get(f.state, 0) + 1
        if f.state in LIVE:
            colour = f.overall or "unknown"
            by_health[colour] = by_health.get(colour, 0) + 1
    # CONTRACT section 4's "variance": variance at completion, BAC - EAC (negative: the
    # projects are expected to overrun), as the manager view's budget_variance.
    variance = None
    if not u.depends("budget_variance", "budget_at_completion", "estimate_at_completion"):
        bac, eac = totals.bac, totals.eac
        variance = u.figure("budget_variance", lambda: exact_sum(
            (bac if bac is not None else ZERO, -(eac if eac is not None else ZERO))))
    return {
        "approved_budget": _s(u.figure("approved_budget", lambda: _approved(figs))),
        "actual_cost": _s(totals.ac),
        "estimate_at_completion": _s(totals.eac), "budget_at_completion": _s(totals.bac),
        "budget_variance": _s(variance),
        "earned_value": _s(totals.ev), "planned_value": _s(totals.pv),
        "cpi": totals.cpi, "spi": totals.spi, "project_count": len(figs),
        "projects_by_state": by_state, "projects_by_health": by_health,
    }


def _shares(doc: PortfolioDoc, rows: Evaluated, approved: Decimal) -> dict[str, float | None]:
    shares: dict[str, Decimal] = dict.fromkeys(doc["objectives"], ZERO)
    for f, _ in rows:
        if f.state in BUDGET_HOLDING and f.bac is not None:
            for objective_id, contribution in f.objectives:
                shares[objective_id] = (shares.get(objective_id, ZERO)
                                        + Decimal(f.bac) * Decimal(contribution))
    return {o_id: ratio(share, approved) for o_id, share in shares.items()}


def portfolio_view(doc: PortfolioDoc, rows: Evaluated) -> dict[str, Any]:
    u = Unavailable()
    figures_ = rollup(rows, u)
    approved = None if figures_["approved_budget"] is None else Decimal(
        figures_["approved_budget"])
    shares: dict[str, float | None] = {}
    remaining = None
    if approved is not None:
        shares = u.figure("objectives.budget_share", lambda: _shares(doc, rows, approved)) or {}
        remaining = u.figure("remaining_envelope", lambda: exact_sum(
            (Decimal(doc["budget_envelope"]), -approved)))
    else:
        u.depends("objectives.budget_share", "approved_budget")
        u.depends("remaining_envelope", "approved_budget")
    view = {
        "portfolio_id": doc["portfolio_id"], "name": doc["name"], "pmo_type": doc["pmo_type"],
        "currency": doc["currency"], "owner": doc["owner"],
        "budget_envelope": doc["budget_envelope"],
        "remaining_envelope": _s(remaining), **figures_,
        "objectives": [{"objective_id": o_id, "title": o["title"], "weight": _num(o["weight"]),
                        "budget_share": shares.get(o_id)}
                       for o_id, o in doc["objectives"].items()],
        "version": doc["version"],
    }
    return _shown(view, u)


def program_view(doc: ProgramDoc, rows: Evaluated) -> dict[str, Any]:
    u = Unavailable()
    view = {"program_id": doc["program_id"], "portfolio_id": doc["portfolio_id"],
            "name": doc["name"], "manager_id": doc["manager_id"],
            "projects": sorted(f.key for f, _ in rows), **rollup(rows, u),
            "version": doc["version"]}
    return _shown(view, u)


def _variance(rows: Evaluated) -> Decimal:
    return exact_sum(k.bac - (k.eac if k.eac is not None else k.bac) for _, k in rows)


def manager_view(doc: ManagerDoc, rows: Evaluated) -> dict[str, Any]:
    """``rows``: the projects whose current manager this is (terminal ones included).

    The projects held (``projects``, ``active_projects``, ``utilisation``) are the
    non-terminal ones among ``rows``, never the manager aggregate's own list: a
    supportive or controlling PMO accepts an assignment before the manager's
    registration (Kafka partitions can deliver it so), which the aggregate then never
    records, while the project's figures always name its manager."""
    u = Unavailable()
    completed = [(f.finished_on, f.baseline_finish) for f, _ in rows if f.state == _COMPLETED]
    held = sorted(f.key for f, _ in rows if f.state not in TERMINAL)
    failing = sum(1 for _, k in rows if "estimate_at_completion" in k.unavailable)
    if failing:
        u["budget_variance"] = f"not computable: unavailable for {failing} of the projects"
    view = {
        "manager_id": doc["manager_id"], "name": doc["name"], "grade": doc["grade"],
        "capacity": doc["capacity"], "active_projects": len(held),
        "utilisation": u.figure("utilisation", lambda: round(len(held) / doc["capacity"], 4)),
        "projects": held, "in_pool": doc["in_pool"],
        "completed_projects": len(completed),
        "on_time_rate": u.figure("on_time_rate", lambda: on_time_rate(
            (date.fromisoformat(a) if a else None, date.fromisoformat(b) if b else None)
            for a, b in completed)),
        "budget_variance": None if failing else _s(u.figure("budget_variance",
                                                            lambda: _variance(rows))),
        "version": doc["version"],
    }
    return _shown(view, u)
