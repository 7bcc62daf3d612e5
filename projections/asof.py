"""Views as recorded at an instant (CONTRACT section 6: recording time, never publisher time).

A project, program or manager as of T folds that aggregate's own stored
events up to the version it had at T (the store's ``event_times`` index says
which), through the same folds and renderers as the live views. Roll-ups read
the temporal table of project figures at T, so a portfolio of 10,000 projects
as of T costs one indexed query, never a scan of the event store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from domain.application import PmoApplication
from domain.base import store_id
from projections.aggregates import PortfolioProjection
from projections.documents import Fig, ProjectDoc, Versioned
from projections.feed import RecordedEvent, from_stored, micros
from projections.folds import (
    fold_manager,
    fold_portfolio,
    fold_program,
    fold_project,
)
from projections.kpi import Kpis
from projections.projects import ProjectProjection
from projections.views import manager_view, portfolio_view, program_view, project_view

D = TypeVar("D", bound=Versioned)
Fold = Callable[[D | None, RecordedEvent], D | None]


def fold_until_failure(fold: Fold[D], start: Callable[[], D | None],
                       events: Sequence[RecordedEvent]) -> tuple[D | None, bool]:
    """The fold of ``events`` on ``start()``, and whether it stopped at an event it could not
    fold (the live view quarantines that aggregate): the answer is then the doc before that
    event, never an error. A fold changes its doc in place, so a failure folds again from
    a fresh ``start()`` up to the event before."""
    doc = start()
    for n, e in enumerate(events):
        try:
            doc = fold(doc, e)
        except Exception:
            doc = start()
            for good in events[:n]:
                doc = fold(doc, good)
            return doc, True
    return doc, False


def doc_at(app: PmoApplication, kind: str, key: str, at: datetime,
           fold: Fold[D]) -> D | None:
    return doc_and_stop(app, kind, key, at, fold)[0]


def doc_and_stop(app: PmoApplication, kind: str, key: str, at: datetime,
                 fold: Fold[D]) -> tuple[D | None, bool]:
    originator_id = store_id(kind, key)
    version = app.ledger.version_at(originator_id, at)
    if version is None:
        return None, False
    stored = app.recorder.select_events(originator_id, lte=version)
    return fold_until_failure(fold, lambda: None, from_stored(app.mapper, stored))


def project(app: PmoApplication, projects: ProjectProjection, key: str,
            at: datetime) -> dict[str, Any] | None:
    """From the latest doc snapshot at or below the version at T, plus the events after it."""
    originator_id = store_id("project", key)
    version = app.ledger.version_at(originator_id, at)
    if version is None:
        return None
    snapshot = projects.snapshot_at(originator_id.hex, version)
    after = snapshot["version"] if snapshot is not None else None
    stored = app.recorder.select_events(originator_id, gt=after, lte=version)
    first = [snapshot]  # the first start() takes the snapshot read above; a refold, a fresh one

    def start() -> ProjectDoc | None:
        return first.pop() if first else projects.snapshot_at(originator_id.hex, version)

    doc, stopped = fold_until_failure(fold_project, start, from_stored(app.mapper, stored))
    if doc is None:
        return None
    view = project_view(doc, at.date())
    if stopped:  # the service adds "quarantined": false otherwise
        view["quarantined"] = True
    return view


def portfolio(app: PmoApplication, projects: ProjectProjection, key: str,
              at: datetime, portfolios: PortfolioProjection | None = None) -> dict[str, Any] | None:
    doc = None
    if portfolios is not None:
        originator_id = store_id("portfolio", key)
        version = app.ledger.version_at(originator_id, at)
        if version is None:
            return None
        doc = portfolios.doc_at_version(originator_id.hex, version)
    stopped = False
    if doc is None:  # no history row yet (the projection lags): fold the stored events
        doc, stopped = doc_and_stop(app, "portfolio", key, at, fold_portfolio)
    if doc is None:
        return None
    view = portfolio_view(doc, projects.figs_at(key, micros(at), at.date()))
    if stopped:  # the service adds "quarantined": false otherwise
        view["quarantined"] = True
    return view


def program(app: PmoApplication, projects: ProjectProjection, key: str,
            at: datetime) -> dict[str, Any] | None:
    doc, stopped = doc_and_stop(app, "program", key, at, fold_program)
    if doc is None:
        return None
    # A project's program never changes, so today's members are the candidates.
    ids = [r[0] for r in projects.db.query("SELECT id FROM pv_projects WHERE program_id = ?",
                                           (key,))]
    view = program_view(doc, projects.figs_at(doc["portfolio_id"], micros(at), at.date(), ids))
    if stopped:  # the service adds "quarantined": false otherwise
        view["quarantined"] = True
    return view


def manager_figs(projects: ProjectProjection, key: str, at_us: int, on: date,
                 valid_us: int | None = None) -> list[tuple[Fig, Kpis]]:
    """The figure rows, recorded at ``at_us`` (and valid at ``valid_us``), of the projects
    manager ``key`` held then: every project ever assigned to ``key`` (by the projects'
    own events, whatever the manager aggregate recorded), read by portfolio (the index of
    the figure table), kept where the row names this manager."""
    return [(f, k) for portfolio_id, members in projects.managed_ever(key).items()
            for f, k in projects.figs_at(portfolio_id, at_us, on, members, valid_us=valid_us)
            if f.manager_id == key]


def manager(app: PmoApplication, projects: ProjectProjection, key: str,
            at: datetime) -> dict[str, Any] | None:
    doc, stopped = doc_and_stop(app, "manager", key, at, fold_manager)
    if doc is None:
        return None
    view = manager_view(doc, manager_figs(projects, key, micros(at), at.date()))
    if stopped:  # the service adds "quarantined": false otherwise
        view["quarantined"] = True
    return view
