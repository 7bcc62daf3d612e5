"""Earned-value KPIs of CONTRACT section 9: pure arithmetic, checked by hand-computed cases."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.kpi import Figures, elapsed_share, on_time_rate, project_kpis, roll_up

D = Decimal
START, FINISH = date(2026, 1, 1), date(2026, 1, 11)  # ten days


def figures(bac: str | None = "1000", ac: str = "0", pct: str | None = None,
            forecast: str | None = None, baseline: date | None = FINISH) -> Figures:
    return Figures(D(bac) if bac else None, D(ac), D(pct) if pct else None,
                   D(forecast) if forecast else None, START, baseline)


def test_planned_value_is_linear_in_days_and_clamped() -> None:
    assert elapsed_share(START, FINISH, date(2025, 12, 1)) == 0
    assert elapsed_share(START, FINISH, date(2026, 1, 4)) == D("0.3")
    assert elapsed_share(START, FINISH, date(2027, 1, 1)) == 1
    assert elapsed_share(START, None, date(2026, 1, 4)) == 0


def test_earned_value_cpi_spi_and_eac_from_bac_over_cpi() -> None:
    k = project_kpis(figures(ac="500", pct="40"), date(2026, 1, 6))  # half the duration
    assert (k.ev, k.pv) == (D("400"), D("500"))
    assert k.cpi == 0.8 and k.spi == 0.8
    assert k.eac == D("1250")  # 1000 / 0.8


def test_ratios_are_null_when_their_divisor_is_zero() -> None:
    k = project_kpis(figures(ac="0", pct="10"), date(2025, 12, 1))
    assert k.cpi is None and k.spi is None
    assert k.eac == D("1000")  # no cpi: EAC is BAC


def test_latest_forecast_wins_over_bac_over_cpi() -> None:
    k = project_kpis(figures(ac="500", pct="40", forecast="1500"), date(2026, 1, 6))
    assert k.eac == D("1500")


def test_zero_cpi_falls_back_to_bac_and_inexact_eac_rounds_to_cents() -> None:
    assert project_kpis(figures(ac="10"), date(2026, 1, 6)).eac == D("1000")
    k = project_kpis(figures(ac="100", pct="30"), date(2026, 1, 6))
    assert k.eac == D("333.33")


def test_unapproved_project_has_no_bac_and_no_eac() -> None:
    k = project_kpis(figures(bac=None, baseline=None, ac="0"), date(2026, 1, 6))
    assert (k.bac, k.ev, k.pv) == (D(0), D(0), D(0))
    assert (k.eac, k.cpi, k.spi) == (None, None, None)


def test_roll_up_divides_sums_never_averages_ratios() -> None:
    on = date(2026, 1, 11)
    a = project_kpis(figures(bac="1000", ac="1000", pct="100"), on)  # cpi 1
    b = project_kpis(figures(bac="100", ac="200", pct="100"), on)  # cpi 0.5
    totals = roll_up([a, b])
    assert totals.cpi == round(1100 / 1200, 4)  # not (1 + 0.5) / 2
    assert (totals.bac, totals.ac, totals.ev, totals.pv) == (D(1100), D(1200), D(1100), D(1100))
    assert totals.spi == 1.0


def test_on_time_rate_counts_finished_on_or_before_baseline() -> None:
    assert on_time_rate([]) is None
    rate = on_time_rate([(date(2026, 1, 10), FINISH), (FINISH, FINISH), (date(2026, 2, 1),
                                                                         FINISH)])
    assert rate == round(2 / 3, 4)


MONEY = st.decimals(min_value=D("0.0001"), max_value=D("999999999999999.9999"), places=4)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(bac=MONEY, ac=MONEY, pct=st.decimals(min_value=D("0.01"), max_value=D(100), places=2))
def test_eac_is_bac_times_ac_over_ev_however_small_cpi_is(bac: Decimal, ac: Decimal,
                                                            pct: Decimal) -> None:
    """Found by tests/e2e/test_kpi_oracle.py: a cpi that rounds to 0.0 (BAC 1, AC 10^15)
    made EAC fall back to BAC."""
    k = project_kpis(figures(str(bac), str(ac), str(pct)), date(2026, 1, 6))
    assert k.ev is not None
    if k.ev == 0:  # EV rounds to 0 cents: cpi is 0, EAC is BAC (section 9's "else BAC")
        assert k.eac == bac
    elif "estimate_at_completion" not in k.unavailable:
        assert k.eac == (bac * ac / k.ev).quantize(D("0.01"))
