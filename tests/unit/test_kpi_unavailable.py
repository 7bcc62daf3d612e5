"""KPIs are total (issue 9): any stored figures give a figure or None with a reason, never an
exception; sums are exact or unavailable, never silently rounded."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.kpi import Figures, exact_sum, project_kpis, roll_up, unreadable_kpis

D = Decimal
START, FINISH = date(2020, 1, 1), date(2021, 1, 1)


def figures(bac: str | None, ac: str = "10", pct: str | None = "50",
            forecast: str | None = None) -> Figures:
    return Figures(D(bac) if bac else None, D(ac), D(pct) if pct else None,
                   D(forecast) if forecast else None, START, FINISH)


def test_a_budget_beyond_28_digits_leaves_ev_pv_and_ratios_unavailable() -> None:
    k = project_kpis(figures("1e27"), date(2020, 7, 1))
    assert (k.ev, k.pv, k.cpi, k.spi, k.eac) == (None, None, None, None, None)
    assert set(k.unavailable) == {"earned_value", "planned_value", "cpi", "spi",
                                  "estimate_at_completion"}
    assert all(r.startswith("not computable") for r in k.unavailable.values())


def test_a_sum_that_would_be_rounded_is_unavailable_and_the_others_stay() -> None:
    on = date(2022, 1, 1)
    big = project_kpis(figures("1e27", pct=None), on)  # EV 0; PV 1e27 in cents: 30 digits
    small = project_kpis(figures("1000.50", pct="100"), on)
    assert big.pv is None and big.ev == D("0.00")
    totals = roll_up([big, small])
    assert totals.pv is None and "planned_value" in totals.unavailable
    assert totals.ac == D("20") and totals.ev == D("1000.50")
    assert totals.bac is None  # 1e27 + 1000.50 needs 31 digits: not rounded, unavailable
    with pytest.raises(ArithmeticError):
        exact_sum([D("1e27"), D("0.5")])


def test_unreadable_figures_make_every_figure_unavailable() -> None:
    k = unreadable_kpis(ValueError("bad"))
    assert roll_up([k]).ev is None


amounts = st.decimals(allow_nan=True, allow_infinity=True, places=None) | st.none()


@settings(max_examples=200, derandomize=True)
@given(bac=amounts, ac=st.decimals(allow_nan=True, allow_infinity=True),
       pct=amounts, forecast=amounts,
       on=st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
def test_kpis_never_raise_whatever_the_stored_figures(
        bac: Decimal | None, ac: Decimal, pct: Decimal | None, forecast: Decimal | None,
        on: date) -> None:
    k = project_kpis(Figures(bac, ac, pct, forecast, START, FINISH), on)
    for name, value in (("earned_value", k.ev), ("planned_value", k.pv), ("cpi", k.cpi),
                        ("spi", k.spi)):
        assert value is not None or name in k.unavailable or name in ("cpi", "spi")
    roll_up([k, k])
