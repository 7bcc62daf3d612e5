"""For any sequence of commands, what the events say is what the aggregates are.

Random commands (valid or not) run against an in-memory world; every aggregate
rebuilt from its recorded events must equal the live one, and its version must
equal the number of events it recorded. Refused commands must record nothing.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain import commands as c
from domain.errors import DomainRejection
from domain.values import Colour, PmoType
from tests.unit.fakes import FakeAggregates, proposal

PROJECTS = ["P1", "P2", "P3"]
MANAGERS = ["M1", "M2"]
money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500"), places=2)
day = st.integers(min_value=0, max_value=400).map(lambda d: date(2026, 1, 1) + timedelta(days=d))
colour = st.sampled_from(list(Colour))


def commands_for(p: str) -> st.SearchStrategy[c.Command]:
    return st.one_of(
        st.just(proposal(p)),
        money.map(lambda m: c.ApproveProject(p, m, "board")),
        st.just(c.RejectProject(p, "no")),
        st.sampled_from([*MANAGERS, "OUTSIDER"]).map(lambda m: c.AssignManager(p, m)),
        day.map(lambda d: c.StartProject(p, d)),
        st.just(c.PutProjectOnHold(p, "pause")),
        st.just(c.ResumeProject(p)),
        money.map(lambda m: c.ChangeBudget(p, m, "scope")),
        st.tuples(money, st.sampled_from(["EUR", "USD"])).map(
            lambda t: c.RecordCost(p, t[0], t[1], date(2026, 3, 1), "labour", "INV")),
        money.map(lambda m: c.UpdateForecast(p, m)),
        day.map(lambda d: c.ChangeSchedule(p, d, "replan")),
        st.sampled_from(["A", "B"]).map(lambda m: c.PlanMilestone(p, m, "ms", date(2026, 6, 1))),
        st.sampled_from(["A", "B"]).map(lambda m: c.AchieveMilestone(p, m, date(2026, 6, 2))),
        st.tuples(colour, st.integers(0, 100)).map(lambda t: c.ReportStatus(
            p, t[0], t[0], t[0], t[0], Decimal(t[1]), "report")),
        st.sampled_from(["R", "S"]).map(lambda r: c.RaiseRisk(p, r, "risk", Decimal("0.5"), 3)),
        st.sampled_from(["R", "S"]).map(lambda r: c.CloseRisk(p, r, "closed")),
        day.map(lambda d: c.CompleteProject(p, d)),
        st.just(c.CancelProject(p, "stop")),
    )


any_command = st.one_of(
    st.sampled_from(PROJECTS).flatmap(commands_for),
    st.tuples(st.sampled_from(MANAGERS), st.integers(1, 3)).map(
        lambda t: c.ChangeCapacity(t[0], t[1])),
    st.sampled_from(MANAGERS).map(lambda m: c.LeavePool(m, None)),
)


def state_of(aggregate: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


@settings(max_examples=150, deadline=None)
@given(pmo_type=st.sampled_from(list(PmoType)), script=st.lists(any_command, max_size=60))
def test_aggregates_rebuilt_from_their_events_equal_the_live_ones(
        pmo_type: PmoType, script: list[c.Command]) -> None:
    aggs = FakeAggregates()
    aggs.run(c.OpenPortfolio("PF", "Portfolio", pmo_type, "EUR", Decimal("1000"), "owner"))
    for m in MANAGERS:
        aggs.run(c.RegisterManager(m, m, 2))
    for command in script:
        versions = {i: a.version for i, a in aggs.by_id.items()}
        pending = {i: len(a.pending_events) for i, a in aggs.by_id.items()}
        try:
            aggs.run(command)
        except DomainRejection:
            assert {i: a.version for i, a in aggs.by_id.items() if i in versions} == versions
            assert {i: len(a.pending_events) for i, a in aggs.by_id.items()
                    if i in pending} == pending
    for aggregate in aggs.by_id.values():
        events = list(aggregate.pending_events)
        assert aggregate.version == len(events)
        rebuilt: Any = None
        for event in events:
            rebuilt = event.mutate(rebuilt)
        assert state_of(rebuilt) == state_of(aggregate)
