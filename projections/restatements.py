"""Restatements: what a report for valid time T said at R, against what is known now.

``GET /v1/portfolios/{id}/restatements?valid_at=T&reported_at=R`` (CONTRACT section 13).
Both sides are valid-time views for T (``projections.valid_read``): "reported" as
recorded at R, "now" as recorded now. A project is listed when one of its compared
figures differs between the two (or it exists on one side only); with it, the events
recorded after R that are counted now: the versions after the one its reported figures
came from, up to the one its current figures come from (figure rows of
``pv_project_history``), each with position, type, source and id. Events recorded after
R but valid after T are not listed: they move nothing at T.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.application import PmoApplication
from domain.base import store_id
from projections.aggregates import PortfolioProjection
from projections.documents import Fig
from projections.feed import from_stored, micros
from projections.kpi import Kpis
from projections.projects import ProjectProjection
from projections.valid_read import portfolio as portfolio_at
from projections.validtime import FOREVER

PROJECT_FIGURES = ("state", "actual_cost", "estimate_at_completion", "cpi", "spi")
PORTFOLIO_FIGURES = ("actual_cost", "estimate_at_completion", "cpi", "spi",
                     "projects_by_state", "approved_budget")


def _figures(fig: Fig, k: Kpis) -> dict[str, Any]:
    return {"state": fig.state, "actual_cost": str(fig.ac),
            "estimate_at_completion": None if k.eac is None else str(k.eac),
            "cpi": k.cpi, "spi": k.spi}


def _moved(before: dict[str, Any] | None, after: dict[str, Any] | None,
           names: tuple[str, ...]) -> list[str]:
    if before is None or after is None:
        return [n for n in names if (before or after or {}).get(n) is not None]
    return [n for n in names if before.get(n) != after.get(n)]


def _versions(projects: ProjectProjection, portfolio_id: str, at_us: int,
              valid_us: int) -> dict[str, int]:
    rows = projects.db.query(
        "SELECT id, MAX(version) FROM pv_project_history WHERE portfolio_id = ? AND "
        "recorded_us <= ? AND valid_us <= ? GROUP BY id", (portfolio_id, at_us, valid_us))
    return {str(i): int(v) for i, v in rows}


def restatements(app: PmoApplication, projects: ProjectProjection,
                 portfolios: PortfolioProjection, key: str, valid: datetime,
                 reported: datetime) -> dict[str, Any] | None:
    """None: no portfolio ``key`` valid at T as known now."""
    now_view = portfolio_at(app, projects, portfolios, key, valid, None)
    if now_view is None:
        return None
    then_view = portfolio_at(app, projects, portfolios, key, valid, reported)
    on, valid_us = valid.date(), micros(valid)
    then = {f.key: _figures(f, k) for f, k in
            projects.figs_at(key, micros(reported), on, valid_us=valid_us)}
    now = {f.key: _figures(f, k) for f, k in
           projects.figs_at(key, micros(FOREVER), on, valid_us=valid_us)}
    changed = sorted(k for k in then.keys() | now.keys()
                     if _moved(then.get(k), now.get(k), PROJECT_FIGURES))
    v_then = _versions(projects, key, micros(reported), valid_us)
    v_now = _versions(projects, key, micros(FOREVER), valid_us)
    items = []
    for project_key in changed:
        oid = store_id("project", project_key)
        items.append({
            "project_id": project_key, "reported": then.get(project_key),
            "now": now.get(project_key),
            "moved": _moved(then.get(project_key), now.get(project_key), PROJECT_FIGURES),
            "events": _events(app, oid, v_then.get(oid.hex, 0), v_now.get(oid.hex, 0),
                              reported)})

    def pick(view: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if view is None else {n: view.get(n) for n in PORTFOLIO_FIGURES}

    return {"portfolio_id": key, "valid_at": valid.isoformat(),
            "reported_at": reported.isoformat(),
            "portfolio": {"reported": pick(then_view), "now": pick(now_view),
                          "moved": _moved(pick(then_view), pick(now_view), PORTFOLIO_FIGURES)},
            "projects": items}


def _events(app: PmoApplication, oid: Any, after: int, upto: int,
            reported: datetime) -> list[dict[str, Any]]:
    """The project's events of versions (after, upto] recorded after ``reported``."""
    if upto <= after:
        return []
    positions = app.ledger.positions_by_version(oid)
    out = []
    for e in from_stored(app.mapper, app.recorder.select_events(oid, gt=after or None,
                                                               lte=upto)):
        if e.recorded_at <= reported:
            continue
        p = e.payload
        time = p.get("time")
        out.append({"position": positions.get(e.originator_version), "type": e.topic,
                    "source": p.get("source"), "id": p.get("event_id"),
                    "version": e.originator_version,
                    "time": time["_data_"] if type(time) is dict else time,
                    "recorded_at": e.recorded_at.isoformat()})
    return out
