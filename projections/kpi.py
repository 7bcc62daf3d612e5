"""Earned-value KPIs of CONTRACT section 9, as pure functions of a project's figures.

For a project, at the day asked (today, or the day of ``as_of``, in UTC):
BAC = approved budget (0 before approval), AC = sum of recorded costs,
EV = BAC x percent_complete / 100 of the latest status report (0 before any),
PV = BAC x the share of the planned duration elapsed, linear by day from
planned_start to baseline_finish (the finish date at approval), clamped to
[0, 1]; cpi = EV / AC and spi = EV / PV, None where the divisor is 0;
EAC = the latest forecast if any, else BAC / cpi when cpi is defined and not 0,
else BAC (None before approval when there is no forecast).

Roll-ups (portfolio, program, manager) sum BAC, AC, EV, PV and EAC over their
projects (None counting as 0) and divide the sums, never averaging ratios.
Money is Decimal; derived amounts (EV, PV, EAC from BAC / cpi) are in cents.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

ZERO = Decimal(0)
CENT = Decimal("0.01")
RATIO_PLACES = 4


@dataclass(frozen=True, slots=True)
class Figures:
    """What the KPIs of one project need, as of one instant."""

    bac: Decimal | None
    ac: Decimal
    percent_complete: Decimal | None
    forecast_eac: Decimal | None
    planned_start: date
    baseline_finish: date | None


@dataclass(frozen=True, slots=True)
class Kpis:
    bac: Decimal
    ac: Decimal
    ev: Decimal
    pv: Decimal
    eac: Decimal | None
    cpi: float | None
    spi: float | None


def elapsed_share(start: date, finish: date | None, on: date) -> Decimal:
    """The share of [start, finish] elapsed on day ``on``, clamped to [0, 1]."""
    if finish is None or on <= start:
        return ZERO
    if on >= finish:
        return Decimal(1)
    return Decimal((on - start).days) / Decimal((finish - start).days)


def ratio(numerator: Decimal, divisor: Decimal) -> float | None:
    """A KPI ratio as a JSON number, None where undefined (divisor 0)."""
    if divisor == 0:
        return None
    return round(float(numerator / divisor), RATIO_PLACES)


def _money(amount: Decimal) -> Decimal:
    """A derived amount (EV, PV, EAC from a division) in cents, rounded half-even."""
    return amount.quantize(CENT)


def project_kpis(f: Figures, on: date) -> Kpis:
    bac = f.bac if f.bac is not None else ZERO
    ev = _money(bac * (f.percent_complete or ZERO) / 100)
    pv = _money(bac * elapsed_share(f.planned_start, f.baseline_finish, on))
    cpi = ratio(ev, f.ac)
    if f.forecast_eac is not None:
        eac: Decimal | None = f.forecast_eac
    elif f.bac is None:
        eac = None
    elif cpi:
        eac = _money(bac * f.ac / ev)  # BAC / (EV / AC), without rounding cpi first
    else:
        eac = bac
    return Kpis(bac, f.ac, ev, pv, eac, cpi, ratio(ev, pv))


@dataclass(frozen=True, slots=True)
class Totals:
    bac: Decimal
    ac: Decimal
    ev: Decimal
    pv: Decimal
    eac: Decimal
    cpi: float | None
    spi: float | None


def roll_up(kpis: Iterable[Kpis]) -> Totals:
    bac = ac = ev = pv = eac = ZERO
    for k in kpis:
        bac += k.bac
        ac += k.ac
        ev += k.ev
        pv += k.pv
        eac += k.eac if k.eac is not None else ZERO
    return Totals(bac, ac, ev, pv, eac, ratio(ev, ac), ratio(ev, pv))


def on_time_rate(completed: Iterable[tuple[date | None, date | None]]) -> float | None:
    """Share of completed projects finished on or before their baseline finish."""
    pairs = list(completed)
    if not pairs:
        return None
    on_time = sum(1 for finished, baseline in pairs
                  if finished is not None and baseline is not None and finished <= baseline)
    return round(on_time / len(pairs), RATIO_PLACES)
