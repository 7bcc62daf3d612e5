"""Views at a valid time, alone or as recorded at an instant (CONTRACT section 13).

``valid`` is the valid time T, ``recorded`` the recording time R (None: as known now).
Each aggregate counts exactly the prefix of its events recorded at or before R and
valid at or before T (``projections.validtime``), through the same folds, quarantine
rule (``fold_until_failure``) and renderers as the live and as-of views. Roll-ups read
the figure rows of ``pv_project_history`` with both times in one indexed query.
Day-dependent KPIs (PV, SPI) are computed on T's date: the state as it was valid then.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from domain.application import PmoApplication
from domain.base import store_id
from projections.aggregates import PortfolioProjection
from projections.asof import D, Fold, fold_until_failure, manager_figs
from projections.db import chunks, fold
from projections.documents import Fig, PortfolioDoc, ProjectDoc
from projections.feed import RecordedEvent, from_stored, micros
from projections.folds import fold_manager, fold_portfolio, fold_program, fold_project
from projections.lists import (
    NUMERIC_SORTS,
    SORTS,
    BadQuery,
    ProjectQuery,
    decode_cursor,
    encode_cursor,
    like_pattern,
)
from projections.projects import (
    ProjectProjection,
)
from projections.validtime import FOREVER, cut_version, prefix, top_version
from projections.views import manager_view, portfolio_view, program_view, project_view

View = dict[str, Any]


def _flagged(view: View, stopped: bool) -> View:
    if stopped:  # the service adds "quarantined": false otherwise
        view["quarantined"] = True
    return view


def project_doc(app: PmoApplication, projects: ProjectProjection, key: str,
                valid: datetime, recorded: datetime | None) -> tuple[ProjectDoc | None, bool]:
    """The project's doc at (T, R), and whether its fold stopped at an event it cannot fold."""
    originator_id = store_id("project", key)
    top = top_version(app, originator_id, recorded)
    if top is None:
        return None, False
    known: tuple[int, int] | None = None
    upper: int | None = None
    rows = projects.db.query("SELECT portfolio_id FROM pv_projects WHERE id = ?",
                             (originator_id.hex,))
    if rows:  # the figure rows bracket the cut; only the events between them are read
        known, upper = projects.valid_bounds(rows[0][0], originator_id.hex, top,
                                             micros(valid))
    cut, _ = cut_version(app, originator_id, top, valid, known, upper)
    if cut == 0:
        return None, False
    snapshot = projects.snapshot_at(originator_id.hex, cut)
    after = snapshot["version"] if snapshot is not None else None
    stored = app.recorder.select_events(originator_id, gt=after, lte=cut)
    first = [snapshot]

    def start() -> ProjectDoc | None:
        return first.pop() if first else projects.snapshot_at(originator_id.hex, cut)

    return fold_until_failure(fold_project, start, from_stored(app.mapper, stored))


def project(app: PmoApplication, projects: ProjectProjection, key: str, valid: datetime,
            recorded: datetime | None, on: date | None = None) -> View | None:
    """``on``: the day of day-dependent KPIs when not T's (a list as of R alone)."""
    doc, stopped = project_doc(app, projects, key, valid, recorded)
    if doc is None:
        return None
    return _flagged(project_view(doc, on or valid.date()), stopped)


def _fold(fold: Fold[D], events: list[RecordedEvent] | None) -> tuple[D | None, bool]:
    if not events:
        return None, False
    return fold_until_failure(fold, lambda: None, events)


def portfolio_doc(app: PmoApplication, portfolios: PortfolioProjection, key: str,
                  valid: datetime, recorded: datetime | None) -> tuple[PortfolioDoc | None, bool]:
    originator_id = store_id("portfolio", key)
    top = top_version(app, originator_id, recorded)
    if top is None:
        return None, False
    known, upper = portfolios.valid_bounds(originator_id.hex, top, micros(valid))
    cut, _ = cut_version(app, originator_id, top, valid, known, upper)
    if cut == 0:
        return None, False
    doc = portfolios.doc_at_version(originator_id.hex, cut)
    if doc is not None:
        return doc, False
    # No history row yet (the projection lags): fold the stored events.
    stored = app.recorder.select_events(originator_id, lte=cut)
    return _fold(fold_portfolio, from_stored(app.mapper, stored))


def portfolio(app: PmoApplication, projects: ProjectProjection,
              portfolios: PortfolioProjection, key: str, valid: datetime,
              recorded: datetime | None) -> View | None:
    doc, stopped = portfolio_doc(app, portfolios, key, valid, recorded)
    if doc is None:
        return None
    rows = projects.figs_at(key, micros(recorded or FOREVER), valid.date(),
                            valid_us=micros(valid))
    return _flagged(portfolio_view(doc, rows), stopped)


def program(app: PmoApplication, projects: ProjectProjection, key: str, valid: datetime,
            recorded: datetime | None) -> View | None:
    doc, stopped = _fold(fold_program, prefix(app, store_id("program", key), valid, recorded))
    if doc is None:
        return None
    # A project's program never changes, so today's members are the candidates.
    ids = [r[0] for r in projects.db.query("SELECT id FROM pv_projects WHERE program_id = ?",
                                           (key,))]
    rows = projects.figs_at(doc["portfolio_id"], micros(recorded or FOREVER), valid.date(),
                            ids, valid_us=micros(valid))
    return _flagged(program_view(doc, rows), stopped)


def manager(app: PmoApplication, projects: ProjectProjection, key: str, valid: datetime,
            recorded: datetime | None) -> View | None:
    doc, stopped = _fold(fold_manager, prefix(app, store_id("manager", key), valid, recorded))
    if doc is None:
        return None
    rows = manager_figs(projects, key, micros(recorded or FOREVER), valid.date(),
                        valid_us=micros(valid))
    return _flagged(manager_view(doc, rows), stopped)


LIST_CHUNK = 200  # candidate projects read per step of a list at a valid time


def project_page(app: PmoApplication, projects: ProjectProjection, query: ProjectQuery,
                 valid: datetime | None, recorded: datetime | None,
                 ) -> tuple[list[View], str | None]:
    """One page of the project list at (T, R). ``portfolio``, ``program`` and ``q`` (name
    and id never change) pick candidates from today's rows; ``state``, ``health`` and
    ``manager`` are matched against each candidate's figures at (T, R), from the figure
    rows, and only the page's projects are folded in full. A project not yet recorded or
    valid at (T, R) is not listed. ``valid`` None: the list as recorded at R, whatever the
    events' valid times (KPIs on R's date, like the as-of views).

    Ordered by id, candidates are read a chunk at a time; any other sort reads every
    candidate's figures (state, approved budget, actual cost at (T, R); name, priority,
    planned start and portfolio never change) and sorts them. ``planned_finish`` is not
    offered (it is not among the figure rows)."""
    name = query.sort.lstrip("-")
    if name not in SORTS or name == "planned_finish":
        raise BadQuery(f"sort: with valid_at or as_of use one of "
                       f"{', '.join(sorted(set(SORTS) - {'planned_finish'}))}"
                       " (prefix '-' for descending)")
    on = None if valid is not None or recorded is None else recorded.date()
    valid = valid or FOREVER
    clause, args = [], []
    for column, wanted in (("portfolio_id", query.portfolio), ("program_id", query.program)):
        if wanted is not None:
            clause.append(f"{column} = ?")
            args.append(wanted)
    if query.q:
        clause.append("(LOWER(name) LIKE ? ESCAPE '\\' OR LOWER(key) LIKE ? ESCAPE '\\')")
        pattern = like_pattern(fold(query.q))
        args += [pattern, pattern]
    at_us, valid_us = micros(recorded or FOREVER), micros(valid)
    if query.sort != "project_id":
        return _sorted_page(app, projects, query, valid, recorded, on, clause, args)
    after = decode_cursor(query.cursor)[1] if query.cursor is not None else None
    items: list[View] = []
    more = False
    while not more:
        where = list(clause)
        params = list(args)
        if after is not None:
            where.append("key > ?")
            params.append(after)
        sql = "SELECT id, key, portfolio_id FROM pv_projects"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = projects.db.query(sql + f" ORDER BY key LIMIT {LIST_CHUNK}", params)
        if not rows:
            break
        after = rows[-1][1]
        figs = _figs(projects, rows, at_us, on or valid.date(), valid_us)
        for _, key, _ in rows:
            fig = figs.get(key)
            if fig is None or not _matches(fig, query):
                continue
            if len(items) == query.limit:
                more = True
                break
            view = project(app, projects, key, valid, recorded, on)
            if view is not None:
                items.append(view)
    last = items[-1]["project_id"] if more and items else None
    return items, None if last is None else encode_cursor(last, last)


def _figs(projects: ProjectProjection, rows: list[tuple[Any, ...]], at_us: int, on: date,
          valid_us: int) -> dict[str, Fig]:
    """The figures at (T, R) of the candidate rows (id, key, portfolio_id, ...), by key."""
    by_portfolio: dict[str, list[str]] = {}
    for row in rows:
        by_portfolio.setdefault(row[2], []).append(row[0])
    return {f.key: f for portfolio_id, ids in by_portfolio.items()
            for part in chunks(ids) for f, _ in projects.figs_at(
                portfolio_id, at_us, on, part, valid_us=valid_us)}


def _sort_value(name: str, fig: Fig, row: tuple[Any, ...]) -> Any:
    """The value a sort compares, as ``projections.lists.SORTS`` has it (never None)."""
    if name == "state":
        return fig.state or ""
    if name in ("approved_budget", "actual_cost"):
        amount = fig.bac if name == "approved_budget" else fig.ac
        return float(amount) if amount is not None else 0
    column = {"project_id": 1, "name": 3, "priority": 4, "planned_start": 5,
              "portfolio_id": 2}[name]
    value = row[column]
    return value if value is not None else (0 if name == "priority" else "")


def _sorted_page(app: PmoApplication, projects: ProjectProjection, query: ProjectQuery,
                 valid: datetime, recorded: datetime | None, on: date | None,
                 clause: list[str], args: list[Any]) -> tuple[list[View], str | None]:
    name = query.sort.lstrip("-")
    desc = query.sort.startswith("-")
    sql = "SELECT id, key, portfolio_id, name, priority, planned_start FROM pv_projects"
    if clause:
        sql += " WHERE " + " AND ".join(clause)
    rows = projects.db.query(sql, args)
    figs = _figs(projects, rows, micros(recorded or FOREVER), on or valid.date(),
                 micros(valid))
    ranked = sorted(((_sort_value(name, figs[r[1]], r), r[1]) for r in rows
                     if r[1] in figs and _matches(figs[r[1]], query)), reverse=desc)
    if query.cursor is not None:
        mark = decode_cursor(query.cursor, numeric=name in NUMERIC_SORTS)
        ranked = [r for r in ranked if (r < mark if desc else r > mark)]
    page = ranked[:query.limit]
    items = [v for _, key in page
             if (v := project(app, projects, key, valid, recorded, on)) is not None]
    more = len(ranked) > query.limit
    return items, encode_cursor(*page[-1]) if more and page else None


def _matches(fig: Fig, query: ProjectQuery) -> bool:
    if query.state is not None and fig.state != query.state:
        return False
    if query.manager is not None and fig.manager_id != query.manager:
        return False
    if query.health is not None:
        colour = fig.overall or "unknown"
        return bool(colour == query.health)
    return True
