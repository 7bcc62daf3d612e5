"""A realistic year of three PMOs, as the CloudEvents their tools would publish.

Deterministic for a seed (dates are fixed, not "now"), and valid under every
governance rule: the generator keeps the same books as the domain (envelope
left per portfolio, projects held per manager) and only emits what the domain
accepts, turning an approval that would not fit the envelope into a rejection,
as a controlling PMO would. The Kafka pipeline is fed the very same events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pmo.demo_plan import MANAGERS, PORTFOLIOS, PROJECT_NAMES, SUMMARIES, Sim

START = datetime(2025, 11, 24, tzinfo=UTC)  # a Monday; the year ends a few days before today
WEEKS = 52
CENT = Decimal("0.01")


@dataclass
class Project:
    key: str
    portfolio: str
    budget: Decimal
    proposed: int
    decide: int
    duration: int
    state: str = "none"
    manager: str | None = None
    approved: Decimal = Decimal(0)
    start: int = 0
    active_weeks: int = 0
    hold_until: int = -1
    spent: Decimal = Decimal(0)
    percent: int = 0
    rag: str = "green"
    milestones: dict[str, int] = field(default_factory=dict)
    risks: list[str] = field(default_factory=list)
    held_once: bool = False
    changed_once: bool = False


def generate(seed: int = 7, projects: int = 100) -> list[dict[str, Any]]:
    """The demo's CloudEvents, in publishing order (each a JSON-ready dict)."""
    sim = Sim(seed, START)
    rng = sim.rng
    for p in PORTFOLIOS:
        sim.emit(0, "pmo.portfolio.opened", p.key, "urn:pmo:governance", {
            "name": p.name, "pmo_type": p.pmo_type, "currency": p.currency,
            "budget_envelope": str(p.envelope), "owner": p.owner})
        for objective_id, title, weight in p.objectives:
            sim.emit(0, "pmo.portfolio.objective_set", p.key, "urn:pmo:governance", {
                "objective_id": objective_id, "title": title, "weight": weight})
    for key, name, grade in MANAGERS:
        capacity = rng.randint(3, 5)
        sim.capacity[key] = capacity
        sim.held[key] = set()
        sim.emit(0, "pmo.manager.registered", key, "urn:hr:workday",
                 {"name": name, "capacity": capacity, "grade": grade})
    for p in PORTFOLIOS:
        for program_id, name in p.programs:
            data: dict[str, Any] = {"portfolio_id": p.key, "name": name}
            if p.pmo_type == "directive":
                data["manager_id"] = rng.choice(MANAGERS)[0]
            sim.emit(0, "pmo.program.launched", program_id, "urn:pmo:governance", data)
    plans = []
    for i in range(projects):
        proposed = rng.randint(0, 44)
        plans.append(Project(
            key=f"PRJ-{i + 1:03d}", portfolio=rng.choice(PORTFOLIOS).key,
            budget=Decimal(rng.randrange(80, 520, 5) * 1000), proposed=proposed,
            decide=proposed + rng.randint(1, 3), duration=rng.randint(12, 34)))
    plans.sort(key=lambda plan: (plan.proposed, plan.key))
    for week in range(WEEKS):
        sim.clock = 0
        for project in plans:
            _week(sim, project, week)
    return sim.events


def _week(sim: Sim, p: Project, week: int) -> None:
    rng = sim.rng
    pf = sim.portfolio(p.portfolio)
    if week == p.proposed:
        _propose(sim, p, week)
    elif p.state == "proposed" and week >= p.decide:
        _decide(sim, p, week)
    elif p.state == "approved":
        if p.manager is None and (pf.pmo_type == "directive" or rng.random() < 0.7):
            _assign(sim, p, week)
        if week >= p.start and (p.manager is not None or pf.pmo_type != "directive"):
            p.state, p.start = "active", week
            sim.emit(week, "pmo.project.started", p.key, "urn:pmo:jira",
                     {"started_on": sim.day(week).isoformat()})
            _plan_milestones(sim, p, week)
        elif rng.random() < 0.01:
            _cancel(sim, p, week, "sponsor withdrew before the start")
    elif p.state == "on_hold" and week >= p.hold_until:
        p.state = "active"
        sim.emit(week, "pmo.project.resumed", p.key, "urn:pmo:jira", {})
    elif p.state == "active":
        _active(sim, p, week)


def _propose(sim: Sim, p: Project, week: int) -> None:
    rng = sim.rng
    pf = sim.portfolio(p.portfolio)
    start = sim.day(week + rng.randint(3, 6))
    data: dict[str, Any] = {
        "portfolio_id": pf.key, "name": PROJECT_NAMES[int(p.key[4:]) % len(PROJECT_NAMES)],
        "sponsor": rng.choice(["COO", "CFO", "CIO", "Head of Sales", "Head of Operations"]),
        "budget_requested": f"{p.budget:.2f}", "planned_start": start.isoformat(),
        "planned_finish": (start + timedelta(weeks=p.duration)).isoformat(),
        "priority": rng.randint(1, 5),
        "objectives": [{"objective_id": o[0], "contribution": rng.choice(["0.3", "0.5", "1"])}
                       for o in rng.sample(pf.objectives, rng.randint(1, 2))]}
    if rng.random() < 0.6:
        data["program_id"] = rng.choice(pf.programs)[0]
    p.state = "proposed"
    sim.emit(week, "pmo.project.proposed", p.key, "urn:pmo:jira", data)


def _decide(sim: Sim, p: Project, week: int) -> None:
    rng = sim.rng
    pf = sim.portfolio(p.portfolio)
    approved = (p.budget * Decimal(rng.choice(["0.9", "0.95", "1"]))).quantize(CENT)
    if rng.random() < 0.12:
        reason = "does not contribute enough to the portfolio's objectives"
    elif pf.pmo_type != "supportive" and approved > pf.envelope - pf.committed:
        reason = "no room left in this year's budget envelope"
    else:
        p.state, p.approved, p.start = "approved", approved, week + rng.randint(1, 3)
        pf.committed += approved
        sim.emit(week, "pmo.project.approved", p.key, "urn:pmo:governance",
                 {"approved_budget": f"{approved:.2f}", "approver": pf.owner})
        return
    p.state = "rejected"
    sim.emit(week, "pmo.project.rejected", p.key, "urn:pmo:governance", {"reason": reason})


def _assign(sim: Sim, p: Project, week: int) -> None:
    free = [key for key, _, _ in MANAGERS if len(sim.held[key]) < sim.capacity[key]]
    if free:
        p.manager = sim.rng.choice(free)
        sim.held[p.manager].add(p.key)
        sim.emit(week, "pmo.project.manager_assigned", p.key, "urn:pmo:resourcing",
                 {"manager_id": p.manager})


def _plan_milestones(sim: Sim, p: Project, week: int) -> None:
    count = sim.rng.randint(2, 3)
    for n in range(1, count + 1):
        due = week + p.duration * n // (count + 1)
        p.milestones[f"{p.key}-M{n}"] = due
        sim.emit(week, "pmo.project.milestone_planned", p.key, "urn:msproject:pmo", {
            "milestone_id": f"{p.key}-M{n}", "name": ["Design signed off", "Pilot live",
                                                      "Rollout complete"][n - 1],
            "due": sim.day(due).isoformat()})


def _active(sim: Sim, p: Project, week: int) -> None:
    rng = sim.rng
    pf = sim.portfolio(p.portfolio)
    p.active_weeks += 1
    if p.active_weeks % 4 == 0:
        monthly = p.approved / Decimal(max(p.duration, 4)) * 4
        amount = (monthly * Decimal(rng.randint(80, 130)) / 100).quantize(CENT)
        p.spent += amount
        sim.emit(week, "pmo.project.cost_recorded", p.key, "urn:finance:sap", {
            "amount": f"{amount:.2f}", "currency": pf.currency,
            "incurred_on": sim.day(week).isoformat(), "category": rng.choice(
                ["labour", "licences", "contractors", "hardware"]),
            "reference": f"INV-{p.key}-{p.active_weeks:02d}"})
    if p.active_weeks % 8 == 0:
        eac = (p.spent + p.approved * Decimal(100 - p.percent) / 100
               * Decimal(rng.randint(90, 125)) / 100).quantize(CENT)
        sim.emit(week, "pmo.project.forecast_updated", p.key, "urn:finance:sap",
                 {"estimate_at_completion": f"{eac:.2f}"})
    for milestone_id, due in list(p.milestones.items()):
        if week >= due + rng.randint(0, 2):
            del p.milestones[milestone_id]
            sim.emit(week, "pmo.project.milestone_achieved", p.key, "urn:msproject:pmo",
                     {"milestone_id": milestone_id, "achieved_on": sim.day(week).isoformat()})
    if rng.random() < 0.08:
        risk_id = f"{p.key}-R{week:02d}"
        p.risks.append(risk_id)
        sim.emit(week, "pmo.project.risk_raised", p.key, "urn:pmo:jira", {
            "risk_id": risk_id, "title": rng.choice(["Key supplier late", "Scope creep",
                                                     "Staff turnover", "Integration defects"]),
            "probability": rng.choice(["0.2", "0.4", "0.6"]), "impact": rng.randint(1, 5)})
    elif p.risks and rng.random() < 0.15:
        sim.emit(week, "pmo.project.risk_closed", p.key, "urn:pmo:jira",
                 {"risk_id": p.risks.pop(0), "resolution": "mitigated"})
    if not p.changed_once and rng.random() < 0.03:
        p.changed_once = True
        p.duration += rng.randint(2, 6)
        sim.emit(week, "pmo.project.schedule_changed", p.key, "urn:msproject:pmo", {
            "planned_finish": sim.day(p.start + p.duration).isoformat(),
            "reason": "dependency on another project slipped"})
    p.percent = min(99, max(p.percent, 100 * p.active_weeks // p.duration))
    if p.active_weeks % 2 == 0:
        _report(sim, p, week)
    if p.active_weeks >= p.duration:
        p.percent = 100
        _report(sim, p, week)
        p.state = "completed"
        sim.release(p.manager, p.key)
        sim.emit(week, "pmo.project.completed", p.key, "urn:pmo:jira",
                 {"finished_on": sim.day(week).isoformat(), "outcome": "benefits handed over"})
    elif rng.random() < 0.004:
        _cancel(sim, p, week, "business case no longer holds")
    elif not p.held_once and rng.random() < 0.02:
        p.held_once, p.state, p.hold_until = True, "on_hold", week + rng.randint(2, 5)
        sim.emit(week, "pmo.project.put_on_hold", p.key, "urn:pmo:jira",
                 {"reason": "waiting for a budget review"})


def _report(sim: Sim, p: Project, week: int) -> None:
    rng = sim.rng
    p.rag = rng.choices(["green", "amber", "red"],
                        {"green": [80, 17, 3], "amber": [35, 50, 15],
                         "red": [20, 40, 40]}[p.rag])[0]
    budget = "red" if p.spent > p.approved else "amber" if p.spent * 100 > p.approved * (
        p.percent + 15) else "green"
    sim.emit(week, "pmo.project.status_reported", p.key, "urn:pmo:status", {
        "overall": p.rag, "scope": rng.choice(["green", "green", "amber"]),
        "schedule": p.rag, "budget": budget, "percent_complete": p.percent,
        "summary": rng.choice(SUMMARIES)})


def _cancel(sim: Sim, p: Project, week: int, reason: str) -> None:
    pf = sim.portfolio(p.portfolio)
    pf.committed -= p.approved  # the domain releases a cancelled project's budget
    p.state = "cancelled"
    sim.release(p.manager, p.key)
    sim.emit(week, "pmo.project.cancelled", p.key, "urn:pmo:jira", {"reason": reason})

