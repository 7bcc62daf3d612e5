"""The project view, and the temporal table of project figures behind every roll-up.

``pv_projects`` holds each project's doc plus the columns lists filter and sort
on, and ``fig``: the compact figures roll-ups read (``figures()`` below).
``pv_project_history`` keeps the figures as they were after each event that
changes them, valid from the event's recording time: a portfolio or program as
of T aggregates the latest row of each project recorded at or before T, so it
never loads the event store. Both are written in the batch's transaction.

Each history row also carries the event's valid time (``valid_us``, CONTRACT section
13; see ``projections.validtime``): the project's running maximum of its events'
``time``, kept in the doc as ``valid_us``. Recording time and valid time both grow
with the version, so the figures at (valid_at=T, as_of=R) are, per project, the row of
the highest version with ``valid_us <= T`` and ``recorded_us <= R``: one indexed query.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import orjson

from domain.catalogue import topic_of
from domain.project import Project
from projections.aggregates import DocProjection
from projections.db import Tx
from projections.documents import Fig, ProjectDoc
from projections.feed import RecordedEvent
from projections.folds import FIGURE_EVENTS, fold_project
from projections.kpi import COMPUTE_ERRORS, Figures, Kpis, project_kpis, unreadable_kpis
from projections.validtime import advance, drop_without_valid_time

SNAPSHOT_EVERY = 100
_MANAGER_ASSIGNED = topic_of(Project.ManagerAssigned)
MEMO_LIMIT = 200_000  # figures kept with their KPIs (a few hundred bytes each)

def fig_row(doc: ProjectDoc) -> list[Any]:
    """The figures of ``doc`` as stored (a JSON list, short: one is written per event that
    changes them); ``Fig`` reads them back, field by field in this order."""
    return [doc["project_id"], doc["state"], doc["health"]["overall"], doc["approved_budget"],
            doc["actual_cost"], doc["percent_complete"], doc["forecast_eac"],
            doc["planned_start"], doc["baseline_finish"], doc["finished_on"],
            doc["manager_id"], doc["program_id"],
            [[o["objective_id"], o["contribution"]] for o in doc["objectives"]]]


def fig_of(doc: ProjectDoc) -> Fig:
    return Fig._make(fig_row(doc))


def figures(fig: Fig) -> Figures:
    return Figures(
        bac=Decimal(fig.bac) if fig.bac is not None else None,
        ac=Decimal(fig.ac),
        percent_complete=(Decimal(fig.percent_complete) if fig.percent_complete is not None
                          else None),
        forecast_eac=Decimal(fig.forecast_eac) if fig.forecast_eac is not None else None,
        planned_start=date.fromisoformat(fig.planned_start),
        baseline_finish=date.fromisoformat(fig.baseline_finish) if fig.baseline_finish else None)


def kpis_of(fig: Fig, on: date) -> Kpis:
    """The KPIs of stored figures on day ``on``; never raises (see ``projections.kpi``)."""
    try:
        f = figures(fig)
    except COMPUTE_ERRORS as e:
        return unreadable_kpis(e)
    return project_kpis(f, on)


class ProjectProjection(DocProjection[ProjectDoc]):
    """Projects: state, money, health, milestones, risks; and their figures over time."""

    name = "projects"
    topics = (f"{Project.TOPIC}.",)
    table = "pv_projects"
    history = "pv_project_history"
    tables = (table, history, "pv_project_snapshots", "pv_project_managers")
    deferred_indexes = ("pv_projects_portfolio", "pv_projects_program", "pv_projects_manager",
                        "pv_project_history_at")
    key_field = "project_id"
    columns = ("portfolio_id", "program_id", "manager_id", "state", "overall", "name",
               "planned_start", "planned_finish", "fig")
    fold = staticmethod(fold_project)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._memo: dict[str, tuple[Fig, date, Kpis]] = {}

    def ddl(self) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS pv_projects (id TEXT PRIMARY KEY, key TEXT NOT NULL, "
            "version {INT} NOT NULL, doc TEXT NOT NULL, portfolio_id TEXT, program_id TEXT, "
            "manager_id TEXT, state TEXT, overall TEXT, name TEXT, planned_start TEXT, "
            "planned_finish TEXT, fig TEXT, priority {INT}, bac {REAL}, ac {REAL})",
            "CREATE UNIQUE INDEX IF NOT EXISTS pv_projects_key ON pv_projects (key)",
            "CREATE INDEX IF NOT EXISTS pv_projects_portfolio ON pv_projects (portfolio_id, key)",
            "CREATE INDEX IF NOT EXISTS pv_projects_program ON pv_projects (program_id, key)",
            "CREATE INDEX IF NOT EXISTS pv_projects_manager ON pv_projects (manager_id, key)",
            # No primary key: the version check makes rows unique; one index serves as-of.
            "CREATE TABLE IF NOT EXISTS pv_project_history (id TEXT NOT NULL, "
            "version {INT} NOT NULL, recorded_us {INT} NOT NULL, portfolio_id TEXT NOT NULL, "
            "fig TEXT NOT NULL, valid_us {INT} NOT NULL)",
            # valid_us last: as-of reads stay covered, valid-time reads too.
            "CREATE INDEX IF NOT EXISTS pv_project_history_at ON pv_project_history "
            "(portfolio_id, id, version, recorded_us, valid_us)",
            # The doc every SNAPSHOT_EVERY versions: an as-of read folds at most that many
            # stored events on top of one (the same fold, so it cannot disagree with live).
            "CREATE TABLE IF NOT EXISTS pv_project_snapshots (id TEXT NOT NULL, "
            "version {INT} NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (id, version))",
            # Every manager a project ever had (a row per assignment's first time): the
            # candidates of a manager's view as of T, found from the projects' own events,
            # so the order of the manager's registration and the assignment does not matter.
            "CREATE TABLE IF NOT EXISTS pv_project_managers (manager_id TEXT NOT NULL, "
            "id TEXT NOT NULL, portfolio_id TEXT NOT NULL, PRIMARY KEY (manager_id, id))",
        ]

    def create_tables(self) -> None:
        drop_without_valid_time(self, "pv_project_history", "valid_us")
        # A view written before the table above is rebuilt from the start (as valid time was).
        drop_without_valid_time(self, "pv_project_managers", None)
        super().create_tables()

    def apply(self, tx: Tx, events: Sequence[RecordedEvent], prepared: Any = None) -> None:
        self._history: list[tuple[str, int, int, str, str, int]] = []
        self._snapshots: list[tuple[str, int, str]] = []
        self._managers: list[tuple[str, str, str]] = []
        super().apply(tx, events)
        tx.insert_many("pv_project_history", ("id", "version", "recorded_us", "portfolio_id",
                                              "fig", "valid_us"), self._history)
        tx.executemany("INSERT INTO pv_project_snapshots (id, version, doc) VALUES (?,?,?) "
                       "ON CONFLICT (id, version) DO NOTHING", self._snapshots)
        tx.executemany("INSERT INTO pv_project_managers (manager_id, id, portfolio_id) "
                       "VALUES (?,?,?) ON CONFLICT (manager_id, id) DO NOTHING", self._managers)

    def snapshot_at(self, id_: str, version: int) -> ProjectDoc | None:
        """The latest doc snapshot at or below ``version``, if any."""
        rows = self.db.query("SELECT doc FROM pv_project_snapshots WHERE id = ? AND version <= ? "
                             "ORDER BY version DESC LIMIT 1", (id_, version))
        return orjson.loads(rows[0][0]) if rows else None

    def applied(self, e: RecordedEvent, doc: ProjectDoc) -> None:
        valid_us = advance(doc, e)
        if e.originator_version % SNAPSHOT_EVERY == 0:
            self._snapshots.append((doc["id"], e.originator_version, orjson.dumps(doc).decode()))
        manager_id = doc["manager_id"]
        if e.topic == _MANAGER_ASSIGNED and manager_id is not None:
            self._managers.append((manager_id, doc["id"], doc["portfolio_id"]))
        if e.topic in FIGURE_EVENTS:
            self._history.append((doc["id"], e.originator_version,
                                  e.recorded_us, doc["portfolio_id"],
                                  orjson.dumps(fig_row(doc)).decode(), valid_us))

    def write(self, tx: Tx, changed: dict[str, ProjectDoc]) -> None:
        tx.executemany(
            "INSERT INTO pv_projects (id, key, version, doc, portfolio_id, program_id, "
            "manager_id, state, overall, name, planned_start, planned_finish, fig, priority, "
            "bac, ac) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET "
            "version = excluded.version, doc = excluded.doc, manager_id = excluded.manager_id, "
            "state = excluded.state, overall = excluded.overall, "
            "planned_finish = excluded.planned_finish, fig = excluded.fig, bac = excluded.bac, "
            "ac = excluded.ac",
            [(id_, d["project_id"], d["version"], orjson.dumps(d).decode(), d["portfolio_id"],
              d["program_id"], d["manager_id"], d["state"], d["health"]["overall"], d["name"],
              d["planned_start"], d["planned_finish"], orjson.dumps(fig_row(d)).decode(),
              d["priority"], float(d["approved_budget"] or 0), float(d["actual_cost"]))
             for id_, d in changed.items()])

    # -- reads for roll-ups ---------------------------------------------------

    def evaluate(self, texts: Sequence[str], on: date) -> list[tuple[Fig, Kpis]]:
        """Figures (as stored) with their KPIs on day ``on``, memoised by the stored text:
        a roll-up of 10,000 projects recomputes only those that changed since."""
        memo = self._memo
        if len(memo) > MEMO_LIMIT:
            memo.clear()
        out = []
        for text in texts:
            hit = memo.get(text)
            if hit is None or hit[1] != on:
                fig = Fig._make(orjson.loads(text))
                hit = memo[text] = (fig, on, kpis_of(fig, on))
            out.append((hit[0], hit[2]))
        return out

    def forget_kpis(self) -> None:
        """Drop the memo (benchmarks measure a cold roll-up with it)."""
        self._memo.clear()

    def live_figs(self, where: str, params: Sequence[Any],
                  on: date) -> list[tuple[Fig, Kpis]]:
        rows = self.db.query(f"SELECT fig FROM pv_projects WHERE {where}", params)
        return self.evaluate([r[0] for r in rows], on)

    def figs_at(self, portfolio_id: str, at_us: int, on: date,
                ids: Sequence[str] | None = None,
                valid_us: int | None = None) -> list[tuple[Fig, Kpis]]:
        """Each project's figures as recorded at or before ``at_us`` (only ``ids``, if given),
        counting only its events valid at or before ``valid_us``, if given."""
        only = ""
        params: list[Any] = [portfolio_id, at_us]
        if valid_us is not None:
            only = " AND valid_us <= ?"
            params.append(valid_us)
        if ids is not None:
            if not ids:
                return []
            only += f" AND id IN ({','.join('?' * len(ids))})"
            params.extend(ids)
        rows = self.db.query(
            "SELECT h.fig FROM pv_project_history h JOIN (SELECT id, MAX(version) AS v "
            "FROM pv_project_history WHERE portfolio_id = ? AND recorded_us <= ?" + only +
            " GROUP BY id) m ON h.id = m.id AND h.version = m.v WHERE h.portfolio_id = ?",
            [*params, portfolio_id])
        return self.evaluate([r[0] for r in rows], on)

    def managed_ever(self, manager_id: str) -> dict[str, list[str]]:
        """The projects ever assigned to ``manager_id`` (ids), by portfolio."""
        by_portfolio: dict[str, list[str]] = {}
        for id_, portfolio_id in self.db.query(
                "SELECT id, portfolio_id FROM pv_project_managers WHERE manager_id = ?",
                (manager_id,)):
            by_portfolio.setdefault(portfolio_id, []).append(id_)
        return by_portfolio

    # -- reads at a valid time ----------------------------------------------------

    def valid_bounds(self, portfolio_id: str, id_: str, top: int,
                     valid_us: int) -> tuple[tuple[int, int] | None, int | None]:
        """Among this project's figure rows up to version ``top``: the highest version valid
        at or before ``valid_us`` with its valid time, and the lowest valid after it."""
        below = self.db.query(
            "SELECT version, valid_us FROM pv_project_history WHERE portfolio_id = ? AND id = ? "
            "AND version <= ? AND valid_us <= ? ORDER BY version DESC LIMIT 1",
            (portfolio_id, id_, top, valid_us))
        above = self.db.query(
            "SELECT MIN(version) FROM pv_project_history WHERE portfolio_id = ? AND id = ? "
            "AND version <= ? AND valid_us > ?", (portfolio_id, id_, top, valid_us))
        known = (int(below[0][0]), int(below[0][1])) if below else None
        upper = above[0][0] if above and above[0][0] is not None else None
        return known, None if upper is None else int(upper)

