"""The projection service: the projections, their store, and views served as ready JSON bytes.

Interface for whoever feeds the projections (embedded runner, Kafka consumer):

- ``service.projections: dict[str, Projection]``, by name: ``portfolios``,
  ``projects``, ``programs``, ``managers``, ``audit`` (``names()`` lists them).
- ``Projection.process(events: Sequence[RecordedEvent], tracking: Mapping[str, int])
  -> None``: apply a batch and upsert the tracking rows, in ONE transaction.
  Re-delivered events are skipped; events of one aggregate must come in version
  order; the audit trail chains by ``RecordedEvent.prev_position`` (see
  ``projections.audit`` for what its caller must guarantee).
- ``Projection.tracking() -> dict[str, int]``: the rows written so far.
- ``service.rejections``: the ``RefusalSink`` of ingest.

Views are cached as bytes under a token that moves whenever a projection
commits in this process, or (throttled to ``refresh_s``) when the tracking rows
change in the store, which covers writers in other processes (Kafka consumers,
``pmo replay``). Day-dependent KPIs (PV, SPI) also key on today's date.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import orjson

from domain.application import PmoApplication
from pmo.settings import Settings
from projections import asof, quarantine, quarantine_ops, restatements, valid_read
from projections.aggregates import ManagerProjection, PortfolioProjection, ProgramProjection
from projections.audit import AuditTrailProjection
from projections.base import LAST_EVENT_AT, REBUILDING, UPSERT_TRACKING, Projection
from projections.bluegreen import PROGRESS
from projections.cache import ViewCache
from projections.db import Db
from projections.documents import ManagerDoc, PortfolioDoc, ProjectDoc
from projections.feed import RecordedEvent, from_micros
from projections.lists import ProjectQuery, encode_cursor, encode_key_cursor, project_page
from projections.projects import ProjectProjection
from projections.rejections import RejectionLog
from projections.views import manager_view, portfolio_view, program_view, project_view

CACHE_LIMIT = 20_000  # entries; the bytes are bounded by ``cache_bytes``
CACHE_BYTES = 64 * 1024 * 1024  # the default of PMO_VIEW_CACHE_BYTES
STATUS_QUARANTINE_LIMIT = 100  # aggregates listed per projection (the count is exact)
# The cache key of each single view served by id, by its collection in the API's
# paths: the routes and the API's fast path (api/fastpath.py) both key by these.
VIEW_KEY_PREFIX = {"portfolios": "portfolio:", "projects": "project:", "programs": "program:",
                   "managers": "manager:"}
Json = bytes


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


class ProjectionService:
    def __init__(self, db: Db, refresh_s: float = 0.25, cache_bytes: int = CACHE_BYTES) -> None:
        self.db = db
        self.refresh_s = refresh_s
        self._generation = 0
        self._db_token: tuple[Any, ...] = ()
        self._checked_at = 0.0
        self._cache = ViewCache(cache_bytes, CACHE_LIMIT)
        self._flags: tuple[tuple[Any, ...], dict[str, dict[str, str | None]]] | None = None
        self._lock = threading.Lock()
        self.portfolios = PortfolioProjection(db, self._changed)
        self.projects = ProjectProjection(db, self._changed)
        self.programs = ProgramProjection(db, self._changed)
        self.managers = ManagerProjection(db, self._changed)
        self.audit = AuditTrailProjection(db, self._changed)
        self.projections: dict[str, Projection] = {p.name: p for p in (
            self.portfolios, self.projects, self.programs, self.managers, self.audit)}
        self.rejections = RejectionLog(db)
        for projection in self.projections.values():
            projection.create_tables()
        self.rejections.create_tables()

    def process_together(self, work: Sequence[tuple[Projection, Sequence[RecordedEvent],
                                                    Mapping[str, int]]]) -> None:
        """Several projections' ``process`` in ONE transaction of the store (the runner's way)."""
        if not work:
            return
        with self.db.transaction() as tx:
            for projection, events, tracking in work:
                projection.process_in(tx, events, tracking)
        self._changed()

    def names(self) -> list[str]:
        return list(self.projections)

    def close(self) -> None:
        self.db.close()

    # -- the cache ----------------------------------------------------------------

    def _changed(self) -> None:
        with self._lock:
            self._generation += 1

    @property
    def view_cache(self) -> ViewCache:
        return self._cache

    def invalidate(self) -> None:
        """Another process has just committed to the views: no cached body is current."""
        self._changed()

    def token(self) -> tuple[Any, ...]:
        now = time.monotonic()
        if now - self._checked_at > self.refresh_s:
            self._checked_at = now
            self._db_token = tuple(self.db.query(
                "SELECT projection, key, value FROM pv_tracking ORDER BY projection, key"))
        return (self._generation, self._db_token, datetime.now(UTC).date())

    def peek(self, key: str) -> tuple[bool, bytes | None]:
        """(True, bytes) when view ``key`` is cached and current: no database work at all."""
        hit = self._cache.get(key)
        if hit is not None and hit[0] == self.token():
            return True, hit[1]
        return False, None

    def cached(self, key: str, build: Callable[[], bytes | None]) -> bytes | None:
        """The bytes of view ``key``, rebuilt only when a projection has moved since."""
        token = self.token()
        hit = self._cache.get(key)
        if hit is not None and hit[0] == token:
            return hit[1]
        body = build()
        self._cache.put(key, token, body)  # bounded in bytes and entries: keys are not
        return body

    # -- live views ---------------------------------------------------------------

    def project(self, key: str) -> bytes | None:
        def build() -> bytes | None:
            doc = self.projects.get(key)
            return None if doc is None else dumps(self._project(doc, _today()))
        return self.cached(f"project:{key}", build)

    def _project(self, doc: ProjectDoc, today: date,
                 flagged: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``flagged``: the quarantined projects, read once by a caller rendering many."""
        if flagged is None:
            flagged = self.quarantine_flags().get("projects", {})
        view = project_view(doc, today)
        view["quarantined"] = doc["id"] in flagged
        return view

    def quarantine_flags(self) -> dict[str, dict[str, str | None]]:
        """projection -> {store id: publisher's id} of its quarantined aggregates, read
        once per cache token (a quarantine changes the tracking rows the token reads)."""
        token = self.token()
        flags = self._flags
        if flags is None or flags[0] != token:
            found: dict[str, dict[str, str | None]] = {}
            for name, aggregate, key in self.db.query(
                    "SELECT projection, aggregate, key FROM pv_quarantine WHERE state = ?",
                    (quarantine.QUARANTINED,)):
                found.setdefault(str(name), {})[str(aggregate)] = key
            flags = self._flags = (token, found)
        return flags[1]

    def _flag(self, view: dict[str, Any], own: bool, where: str,
              params: Sequence[Any]) -> dict[str, Any]:
        """A roll-up's ``quarantined``: its own aggregate (``own``), or a project it sums
        (``pv_projects`` rows matching ``where``), is held at its last good state;
        ``quarantined_projects`` names those projects."""
        names: list[str] = []
        if self.quarantine_flags().get("projects"):  # else no query at all (the usual case)
            names = sorted(str(k) for (k,) in self.db.query(
                "SELECT p.key FROM pv_projects p JOIN pv_quarantine q ON q.aggregate = p.id "
                f"AND q.projection = 'projects' AND q.state = ? WHERE ({where})",
                [quarantine.QUARANTINED, *params]))
        view["quarantined_projects"] = names
        view["quarantined"] = own or bool(names)
        return view

    def with_flags(self, kind: str, doc: Mapping[str, Any], view: dict[str, Any]) -> dict[str, Any]:
        """``view`` of ``doc`` (``kind`` one of VIEW_KEY_PREFIX's collections) with the
        quarantine fields every answer carries: what an evidence snapshot renders too."""
        own = self._own(kind, doc)  # each collection is named as its projection
        if kind == "projects":
            view["quarantined"] = own
            return view
        where = {"portfolios": "portfolio_id", "programs": "program_id",
                 "managers": "manager_id"}[kind]
        return self._flag(view, own, f"{where} = ?", (doc[where],))

    def _own(self, projection: str, doc: Mapping[str, Any]) -> bool:
        return doc["id"] in self.quarantine_flags().get(projection, {})

    def _portfolio(self, doc: PortfolioDoc) -> dict[str, Any]:
        rows = self.projects.live_figs("portfolio_id = ?", (doc["portfolio_id"],), _today())
        return self._flag(portfolio_view(doc, rows), self._own("portfolios", doc),
                          "portfolio_id = ?", (doc["portfolio_id"],))

    def portfolio(self, key: str) -> bytes | None:
        def build() -> bytes | None:
            doc = self.portfolios.get(key)
            return None if doc is None else dumps(self._portfolio(doc))
        return self.cached(f"portfolio:{key}", build)

    def portfolio_list(self, cursor: str | None, limit: int) -> bytes:
        def build() -> bytes:
            docs = self.portfolios.all(cursor, limit + 1)
            items = [self._portfolio(d) for d in docs[:limit]]
            more = len(docs) > limit
            return dumps({"items": items, "next_cursor": encode_key_cursor(
                items[-1]["portfolio_id"]) if more else None})
        body = self.cached(f"portfolios:{cursor}:{limit}", build)
        assert body is not None
        return body

    def project_list(self, query: ProjectQuery) -> bytes:
        def build() -> bytes:
            docs, next_cursor = project_page(self.db, query)
            today, flagged = _today(), self.quarantine_flags().get("projects", {})
            items = [self._project(orjson.loads(d), today, flagged) for d in docs]
            return dumps({"items": items, "next_cursor": next_cursor})
        body = self.cached(f"projects:{query!r}", build)
        assert body is not None
        return body

    def program(self, key: str) -> bytes | None:
        def build() -> bytes | None:
            doc = self.programs.get(key)
            if doc is None:
                return None
            rows = self.projects.live_figs("program_id = ?", (key,), _today())
            return dumps(self._flag(program_view(doc, rows), self._own("programs", doc),
                                    "program_id = ?", (key,)))
        return self.cached(f"program:{key}", build)

    def _manager(self, doc: ManagerDoc) -> dict[str, Any]:
        rows = self.projects.live_figs("manager_id = ?", (doc["manager_id"],), _today())
        return self._flag(manager_view(doc, rows), self._own("managers", doc),
                          "manager_id = ?", (doc["manager_id"],))

    def manager(self, key: str) -> bytes | None:
        def build() -> bytes | None:
            doc = self.managers.get(key)
            return None if doc is None else dumps(self._manager(doc))
        return self.cached(f"manager:{key}", build)

    def manager_list(self, cursor: str | None, limit: int) -> bytes:
        def build() -> bytes:
            docs = self.managers.all(cursor, limit + 1)
            items = [self._manager(d) for d in docs[:limit]]
            more = len(docs) > limit
            return dumps({"items": items, "next_cursor": encode_key_cursor(
                items[-1]["manager_id"]) if more else None})
        body = self.cached(f"managers:{cursor}:{limit}", build)
        assert body is not None
        return body

    # -- as of an instant -----------------------------------------------------------

    def as_of(self, app: PmoApplication, kind: str, key: str, at: datetime) -> bytes | None:
        """``kind`` is project, portfolio, program or manager; ``at`` is recording time."""
        at = at.astimezone(UTC)  # one instant, one cache entry, shown in UTC
        def build() -> bytes | None:
            if kind == "portfolio":
                view = asof.portfolio(app, self.projects, key, at, self.portfolios)
            else:
                view = getattr(asof, kind)(app, self.projects, key, at)
            if view is None:
                return None
            stopped = view.get("quarantined", False)  # its fold met an event it cannot fold
            if kind == "project":
                view["quarantined"] = stopped
            else:  # and a roll-up names the quarantined projects it sums
                where = {"portfolio": "portfolio_id", "program": "program_id",
                         "manager": "manager_id"}[kind]
                self._flag(view, stopped, f"{where} = ?", (key,))
            view["as_of"] = at.isoformat()
            return dumps(view)
        return self.cached(f"{kind}@{at.isoformat()}:{key}", build)

    # -- at a valid time ------------------------------------------------------------

    def valid_at(self, app: PmoApplication, kind: str, key: str, valid: datetime,
                 recorded: datetime | None = None) -> bytes | None:
        """``kind`` as above; ``valid`` is valid time, ``recorded`` recording time (None:
        as known now). See ``projections.valid_read``."""
        valid = valid.astimezone(UTC)
        recorded = None if recorded is None else recorded.astimezone(UTC)

        def build() -> bytes | None:
            if kind == "portfolio":
                view = valid_read.portfolio(app, self.projects, self.portfolios, key, valid,
                                            recorded)
            else:
                view = getattr(valid_read, kind)(app, self.projects, key, valid, recorded)
            if view is None:
                return None
            stopped = view.get("quarantined", False)
            if kind == "project":
                view["quarantined"] = stopped
            else:
                where = {"portfolio": "portfolio_id", "program": "program_id",
                         "manager": "manager_id"}[kind]
                self._flag(view, stopped, f"{where} = ?", (key,))
            view["valid_at"] = valid.isoformat()
            if recorded is not None:
                view["as_of"] = recorded.isoformat()
            return dumps(view)
        at = "now" if recorded is None else recorded.isoformat()
        return self.cached(f"{kind}@{valid.isoformat()}|{at}:{key}", build)

    def project_list_valid(self, app: PmoApplication, query: ProjectQuery,
                           valid: datetime | None, recorded: datetime | None = None) -> bytes:
        """The project list at valid time ``valid`` and/or as recorded at ``recorded``
        (see ``valid_read.project_page``)."""
        valid = None if valid is None else valid.astimezone(UTC)
        recorded = None if recorded is None else recorded.astimezone(UTC)

        def build() -> bytes:
            views, next_cursor = valid_read.project_page(app, self.projects, query, valid,
                                                         recorded)
            for v in views:
                v.setdefault("quarantined", False)
                if valid is not None:
                    v["valid_at"] = valid.isoformat()
                if recorded is not None:
                    v["as_of"] = recorded.isoformat()
            return dumps({"items": views, "next_cursor": next_cursor})
        at = "now" if recorded is None else recorded.isoformat()
        when = "any" if valid is None else valid.isoformat()
        body = self.cached(f"projects@{when}|{at}:{query!r}", build)
        assert body is not None
        return body

    def restatements(self, app: PmoApplication, key: str, valid: datetime,
                     reported: datetime) -> bytes | None:
        """See ``projections.restatements`` (not cached: an auditor's occasional question)."""
        found = restatements.restatements(app, self.projects, self.portfolios, key,
                                          valid.astimezone(UTC), reported.astimezone(UTC))
        return None if found is None else dumps(found)

    # -- status -------------------------------------------------------------------

    def status(self, store_max: int | None) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT projection, key, value FROM pv_tracking ORDER BY projection, key")
        # The same rows are the cache's token: a reader told "lag 0" (or a min_position
        # wait that saw the watermark) then reads views at least that fresh, not bytes
        # cached up to ``refresh_s`` before.
        with self._lock:
            self._db_token = tuple(rows)
            self._checked_at = time.monotonic()
        tracked: dict[str, dict[str, int]] = {}
        for name, key, value in rows:
            tracked.setdefault(name, {})[key] = int(value)
        held = quarantine_ops.counts(self.db.query)
        listed = [e for name in held for e in quarantine_ops.entries(
            self.db.query, name, limit=STATUS_QUARANTINE_LIMIT)]
        out = []
        for name in self.projections:
            t = tracked.get(name, {})
            position = t.get("_position", t.get("store", 0))
            last = t.get(LAST_EVENT_AT)
            rebuilding = bool(t.get(REBUILDING))
            out.append({
                "name": name, "position": position,
                "lag": None if store_max is None else max(store_max - position, 0),
                "last_event_at": None if last is None else from_micros(last).isoformat(),
                "state": "rebuilding" if rebuilding else "live",
                # A blue/green rebuild's next version (position and lag describe the live one).
                **({"rebuild": {"position": t.get(PROGRESS, 0), "head": store_max}}
                   if rebuilding else {}),
                # Viewers see the error's class only: its text may quote publishers' data.
                "quarantined": held.get(name, (0, 0))[0],
                "held_events": held.get(name, (0, 0))[1],
                "quarantined_aggregates": [
                    {"aggregate": e.key or e.aggregate, "first_position": e.first_position,
                     "error": e.error_class, "since": from_micros(e.since_us).isoformat()}
                    for e in listed if e.projection == name],
            })
        return out

    def request_rebuild(self, name: str) -> None:
        """Kafka mode: flag projection ``name`` for a blue/green rebuild, which its consumer
        carries out (``consumers.rebuild``); the live view is served meanwhile."""
        with self.db.transaction() as tx:
            tx.executemany(UPSERT_TRACKING, [(name, REBUILDING, 1), (name, PROGRESS, 0)])

    # -- quarantine (see projections.quarantine) -------------------------------------

    def quarantinable(self, name: str) -> Projection:
        """The projection ``name`` if it quarantines; KeyError otherwise."""
        projection = self.projections.get(name)
        if projection is None or not projection.quarantinable:
            raise KeyError(name)
        return projection

    def quarantined(self, projection: str | None, after: tuple[str, str] | None,
                    limit: int) -> list[quarantine_ops.Entry]:
        return quarantine_ops.entries(self.db.query, projection, after, limit)

    def retry_quarantined(self, name: str, aggregate: str,
                          record: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Re-apply a quarantined aggregate's held events; ``record(outcome)`` runs before
        the view change commits (it stores the audit event): if it fails, nothing changed."""
        return self._act(quarantine_ops.retry, name, aggregate, record)

    def evict_quarantined(self, name: str, aggregate: str,
                          record: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Drop a quarantined aggregate's view rows; ``record`` as for a retry."""
        return self._act(quarantine_ops.evict, name, aggregate, record)

    def _act(self, action: Callable[[Projection, Any, str], dict[str, Any]], name: str,
             aggregate: str, record: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        projection = self.quarantinable(name)
        with self.db.transaction() as tx:
            outcome = action(projection, tx, aggregate)
            record(outcome)
        self._changed()
        return outcome


def _today() -> date:
    return datetime.now(UTC).date()


def build_projections(settings: Settings) -> ProjectionService:
    """The projection service on the configured projection store (tables created here)."""
    return ProjectionService(Db(settings.projection_store),
                             cache_bytes=settings.view_cache_bytes)


__all__ = ["ProjectionService", "build_projections", "encode_cursor"]
