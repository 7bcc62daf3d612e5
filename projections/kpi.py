"""Earned-value KPIs of CONTRACT section 9, as pure functions of a project's figures.

For a project, at the day asked (today, or the day of ``as_of``, in UTC):
BAC = approved budget (0 before approval), AC = sum of recorded costs,
EV = BAC x percent_complete / 100 of the latest status report (0 before any),
PV = BAC x the share of the planned duration elapsed, linear by day from
planned_start to baseline_finish (the finish date at approval), clamped to
[0, 1]; cpi = EV / AC and spi = EV / PV, None where the divisor is 0;
EAC = the latest forecast if any, else BAC / cpi when cpi is defined and not 0
(EV and AC both above 0, however small cpi is), else BAC (None before approval when
there is no forecast).

Roll-ups (portfolio, program, manager) sum BAC, AC, EV, PV and EAC over their
projects (None counting as 0) and divide the sums, never averaging ratios.
Money is Decimal; derived amounts (EV, PV, EAC from BAC / cpi) are in cents.

Total by design: the store may hold any value an older version accepted (an
approved budget of 1e27 cannot be rounded to cents within 28 digits). A figure
that cannot be computed exactly is None, and ``unavailable`` names it with the
reason; no input makes these functions raise. Sums are exact or unavailable,
never silently rounded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import (
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)
from functools import partial
from typing import TypeVar

ZERO = Decimal(0)
CENT = Decimal("0.01")
RATIO_PLACES = 4
# Sums of money must be exact: beyond 28 digits Decimal would round them silently.
EXACT = Context(prec=28, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])
# What computing a figure from stored values may raise (InvalidOperation, Overflow and
# ZeroDivisionError are ArithmeticErrors; an unreadable stored text is a ValueError).
COMPUTE_ERRORS = (ArithmeticError, ValueError, TypeError, LookupError)
T = TypeVar("T")


class Unavailable(dict[str, str]):
    """Figures a view could not compute, by the view's key, with the reason."""

    def figure(self, name: str, compute: Callable[[], T]) -> T | None:
        """``compute()``, or None with the reason recorded under ``name``."""
        try:
            return compute()
        except COMPUTE_ERRORS as e:
            self[name] = reason(e)
            return None

    def depends(self, name: str, *on: str) -> bool:
        """Record ``name`` as unavailable when a figure it needs is; True if it is."""
        missing = [n for n in on if n in self]
        if missing:
            self[name] = f"not computable: needs {', '.join(missing)}, which is unavailable"
        return bool(missing)


def reason(error: BaseException) -> str:
    if isinstance(error, ArithmeticError):
        return ("not computable: the stored figures are beyond exact decimal arithmetic "
                f"({type(error).__name__})")
    return f"not computable: a stored value is unreadable ({type(error).__name__})"


def exact_sum(values: Iterable[Decimal]) -> Decimal:
    """The exact sum, or an ArithmeticError (never a rounded total)."""
    with localcontext(EXACT):
        total = ZERO
        for v in values:
            total += v
        return total


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
    ev: Decimal | None  # None: see ``unavailable``
    pv: Decimal | None
    eac: Decimal | None
    cpi: float | None
    spi: float | None
    unavailable: Unavailable = field(default_factory=Unavailable)


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
    value = float(numerator / divisor)
    if not math.isfinite(value):
        raise OverflowError("ratio out of the range of a JSON number")
    return round(value, RATIO_PLACES)


def _money(amount: Decimal) -> Decimal:
    """A derived amount (EV, PV, EAC from a division) in cents, rounded half-even."""
    if not amount.is_finite():
        raise InvalidOperation(f"not a finite amount: {amount}")
    return amount.quantize(CENT)


def project_kpis(f: Figures, on: date) -> Kpis:
    u = Unavailable()
    bac = f.bac if f.bac is not None else ZERO
    ev = u.figure("earned_value", lambda: _money(bac * (f.percent_complete or ZERO) / 100))
    pv = u.figure("planned_value", lambda: _money(
        bac * elapsed_share(f.planned_start, f.baseline_finish, on)))
    cpi = spi = None
    if ev is not None:
        cpi = u.figure("cpi", lambda: ratio(ev, f.ac))
    u.depends("cpi", "earned_value")
    if ev is not None and pv is not None:
        spi = u.figure("spi", lambda: ratio(ev, pv))
    u.depends("spi", "earned_value", "planned_value")
    eac: Decimal | None
    if f.forecast_eac is not None:
        eac = f.forecast_eac
    elif f.bac is None or u.depends("estimate_at_completion", "cpi"):
        eac = None
    elif ev and f.ac:
        # BAC / (EV / AC). Decided on EV and AC, not on the cpi shown: rounded to 4 places,
        # a cpi of 5e-16 (1 of budget, 10^15 spent) reads 0.0, and EAC was shown as BAC.
        eac = u.figure("estimate_at_completion", lambda: _money(bac * f.ac / ev))
    else:
        eac = bac
    return Kpis(bac, f.ac, ev, pv, eac, cpi, spi, u)


def unreadable_kpis(error: BaseException) -> Kpis:
    """The KPIs of a project whose stored figures cannot even be read: all unavailable."""
    u = Unavailable({name: reason(error) for name in (
        "earned_value", "planned_value", "estimate_at_completion", "cpi", "spi",
        "approved_budget", "actual_cost")})
    return Kpis(ZERO, ZERO, None, None, None, None, None, u)


@dataclass(frozen=True, slots=True)
class Totals:
    bac: Decimal | None
    ac: Decimal | None
    ev: Decimal | None
    pv: Decimal | None
    eac: Decimal | None
    cpi: float | None
    spi: float | None
    unavailable: Unavailable = field(default_factory=Unavailable)


# Each summed figure: its key in the views (and in a project's ``unavailable``), its getter.
_SUMMED: tuple[tuple[str, str, Callable[[Kpis], Decimal | None]], ...] = (
    ("budget_at_completion", "approved_budget", lambda k: k.bac),
    ("actual_cost", "actual_cost", lambda k: k.ac),
    ("earned_value", "earned_value", lambda k: k.ev),
    ("planned_value", "planned_value", lambda k: k.pv),
    ("estimate_at_completion", "estimate_at_completion", lambda k: k.eac),
)


def roll_up(kpis: Iterable[Kpis]) -> Totals:
    """Sums over the projects (a term that is unavailable makes its sum unavailable)."""
    rows = kpis if isinstance(kpis, list) else list(kpis)
    u = Unavailable()
    if not any(k.unavailable for k in rows):
        try:  # the common case, in one pass: every term is known and the sums are exact
            with localcontext(EXACT):
                bac = ac = ev = pv = eac = ZERO
                for k in rows:
                    bac += k.bac
                    ac += k.ac
                    ev += k.ev or ZERO
                    pv += k.pv or ZERO
                    eac += k.eac or ZERO
            return Totals(bac, ac, ev, pv, eac, u.figure("cpi", lambda: ratio(ev, ac)),
                          u.figure("spi", lambda: ratio(ev, pv)), u)
        except ArithmeticError:
            pass  # one sum is beyond exact arithmetic: find which, one by one
    sums: list[Decimal | None] = []
    for name, get in _SUMMED_BY_NAME:
        failing = sum(1 for k in rows if name_in(k, name))
        if failing:
            u[name] = f"not computable: unavailable for {failing} of the projects"
            sums.append(None)
        else:
            sums.append(u.figure(name, partial(_sum_of, rows, get)))
    t_bac, t_ac, t_ev, t_pv, t_eac = sums
    cpi = spi = None
    if not u.depends("cpi", "earned_value", "actual_cost"):
        cpi = u.figure("cpi", lambda: ratio(t_ev or ZERO, t_ac or ZERO))
    if not u.depends("spi", "earned_value", "planned_value"):
        spi = u.figure("spi", lambda: ratio(t_ev or ZERO, t_pv or ZERO))
    return Totals(t_bac, t_ac, t_ev, t_pv, t_eac, cpi, spi, u)


_SUMMED_BY_NAME = [(name, get) for name, _, get in _SUMMED]
_OWN = {name: own for name, own, _ in _SUMMED}


def name_in(k: Kpis, name: str) -> bool:
    """Whether the project's own figure behind the roll-up's ``name`` is unavailable."""
    return _OWN[name] in k.unavailable


def _sum_of(rows: list[Kpis], get: Callable[[Kpis], Decimal | None]) -> Decimal:
    return exact_sum(v for v in map(get, rows) if v is not None)


def on_time_rate(completed: Iterable[tuple[date | None, date | None]]) -> float | None:
    """Share of completed projects finished on or before their baseline finish."""
    pairs = list(completed)
    if not pairs:
        return None
    on_time = sum(1 for finished, baseline in pairs
                  if finished is not None and baseline is not None and finished <= baseline)
    return round(on_time / len(pairs), RATIO_PLACES)
