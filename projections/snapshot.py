"""Evidence snapshots: every view as of T, the trail up to T and its head, in one SQLite file.

Built beside the live views, never touching them: the store's events recorded up
to T are folded into a temporary projection store (the same projections and
runner as a replay), and each view is rendered from it for the day of T, so a
row's document is what ``GET /v1/{kind}/{id}?as_of=T`` answers. The file:

- ``manifest(key, value)``: ``as_of``, ``head_position`` (the store's last
  position recorded at or before T), ``head_hash``, ``events``, ``created``,
  ``service_version``, ``digest_version``;
- ``portfolios``, ``projects``, ``programs``, ``managers`` ``(id, doc)``: JSON documents;
- ``trail``: the audit entries up to the head (the shape of ``GET /v1/audit``).

``check`` recomputes all of it from the store (chain and views) and compares,
and, given an anchor, ties the snapshot's chain to it.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from domain.application import PmoApplication
from projections import anchors
from projections.audit import DIGEST_VERSION, GENESIS
from projections.audit_read import ENTRY, AuditFilter, entries
from projections.chain import Progress, StoreChain
from projections.db import Db
from projections.feed import micros
from projections.runner import rebuild
from projections.service import ProjectionService
from projections.views import manager_view, portfolio_view, program_view, project_view
from storage.urls import StoreUrl

VIEWS = ("portfolios", "projects", "programs", "managers")  # the snapshot's view tables
PAGE = 1000


@contextmanager
def folded(app: PmoApplication, at: datetime) -> Iterator[ProjectionService]:
    """A temporary projection store holding the fold of the events recorded up to ``at``."""
    with tempfile.TemporaryDirectory(prefix="pmo-snapshot-") as tmp:
        service = ProjectionService(Db(StoreUrl.sqlite_in(Path(tmp), "fold.sqlite")))
        try:
            rebuild(app, service, None, at)
            yield service
        finally:
            service.close()


def _views(service: ProjectionService, at: datetime) -> Iterator[tuple[str, str, bytes]]:
    """Every view of the fold, rendered for day ``at.date()``: what the as-of routes answer.

    The fold holds exactly the events recorded up to ``at``, so its current documents
    are the documents at ``at``; rendering them here (not through ``asof``, which looks
    up each aggregate's history) keeps a snapshot linear in the number of views.
    """
    day, stamp = at.date(), at.isoformat()
    projects = service.projects
    kinds: dict[str, tuple[Any, Callable[[Any], dict[str, Any]]]] = {
        "portfolios": (service.portfolios, lambda d: portfolio_view(
            d, projects.live_figs("portfolio_id = ?", (d["portfolio_id"],), day))),
        "projects": (projects, lambda d: project_view(d, day)),
        "programs": (service.programs, lambda d: program_view(
            d, projects.live_figs("program_id = ?", (d["program_id"],), day))),
        "managers": (service.managers, lambda d: manager_view(
            d, projects.live_figs("manager_id = ?", (d["manager_id"],), day))),
    }
    for name, (projection, render) in kinds.items():
        after: str | None = None
        while True:
            docs = projection.all(after, PAGE)
            for doc in docs:
                view = service.with_flags(name, doc, render(doc))
                view["as_of"] = stamp
                yield name, doc[projection.key_field], orjson.dumps(view)
            if len(docs) < PAGE:
                break
            after = docs[-1][projection.key_field]


def _head(service: ProjectionService) -> tuple[int, str]:
    rows = service.db.query("SELECT position, hash FROM pv_audit_chain ORDER BY position "
                            "DESC LIMIT 1")
    return (int(rows[0][0]), str(rows[0][1])) if rows else (0, GENESIS)


def write(app: PmoApplication, at: datetime, output: Path) -> dict[str, Any]:
    """Write the snapshot as of ``at`` to ``output`` (atomically); return its manifest."""
    at = at.astimezone(UTC)
    partial = output.with_name(output.name + ".partial")
    partial.unlink(missing_ok=True)
    with folded(app, at) as service, closing(sqlite3.connect(partial)) as out:
        out.execute("CREATE TABLE manifest (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        for name in VIEWS:
            out.execute(f"CREATE TABLE {name} (id TEXT PRIMARY KEY, doc TEXT NOT NULL)")
        out.execute(f"CREATE TABLE trail ({', '.join(ENTRY)}, PRIMARY KEY (position))")
        for name, key, body in _views(service, at):
            out.execute(f"INSERT INTO {name} VALUES (?, ?)", (key, body.decode()))
        count = 0
        for item in entries(service.db, AuditFilter()):
            out.execute(f"INSERT INTO trail VALUES ({','.join('?' * len(ENTRY))})",
                        [item[k] for k in ENTRY])
            count += 1
        position, head_hash = _head(service)
        manifest = {"as_of": at.isoformat(), "head_position": position,
                    "head_hash": head_hash, "events": count,
                    "created": datetime.now(UTC).isoformat(),
                    "service_version": metadata.version("pmo-ledger"),
                    "digest_version": DIGEST_VERSION}
        out.executemany("INSERT INTO manifest VALUES (?, ?)",
                        [(k, str(v)) for k, v in manifest.items()])
        out.commit()
    os.replace(partial, output)
    return manifest


def check(app: PmoApplication, path: Path, anchor: anchors.Checkpoint | None = None,
          progress: Progress | None = None) -> dict[str, Any]:
    """Recompute the snapshot from the store and compare; tie it to ``anchor`` if given."""
    if not path.is_file():
        raise ValueError(f"{path}: no such snapshot")
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as snap:
        try:
            return _check(app, snap, anchor, progress)
        except (sqlite3.Error, KeyError) as e:  # a file that is SQLite, but no snapshot
            raise ValueError(f"{path} is not a snapshot: {type(e).__name__}: {e}") from e
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from e


def _manifest(snap: sqlite3.Connection) -> tuple[datetime, int, dict[str, Any]]:
    """The manifest's instant, head position and the fields every answer repeats."""
    manifest = dict(snap.execute("SELECT key, value FROM manifest").fetchall())
    try:
        at = datetime.fromisoformat(manifest["as_of"])
        head = int(manifest["head_position"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"its manifest is not one a snapshot writes: {e}") from e
    if at.utcoffset() is None or not 0 <= head <= anchors.MAX_POSITION:
        raise ValueError("its manifest is not one a snapshot writes: as_of without an "
                         "offset, or a head_position no store holds")
    return at, head, {"as_of": manifest["as_of"], "head_position": head,
                      "head_hash": str(manifest["head_hash"])}


def _check(app: PmoApplication, snap: sqlite3.Connection, anchor: anchors.Checkpoint | None,
           progress: Progress | None) -> dict[str, Any]:
    at, head, out = _manifest(snap)
    broken = _check_trail(app, snap, head, out["head_hash"], progress)
    if broken is None:
        broken = _check_cut(app, head, at)
    if broken is None:
        broken = _check_views(app, snap, at)
    if broken is None and anchor is not None:
        result = anchors.check(app, anchor)
        out["anchor"] = result
        if not result["ok"]:
            broken = ("anchor", result["detail"])
        elif anchor.position <= head:
            row = snap.execute("SELECT hash FROM trail WHERE position = ?",
                               (anchor.position,)).fetchone()
            if row is None or row[0] != anchor.head_hash:
                broken = ("anchor", "the snapshot's trail does not pass the anchored head")
    if broken is not None:
        return {"ok": False, **out, "what": broken[0], "detail": broken[1]}
    return {"ok": True, **out, "checked": head}


def _check_trail(app: PmoApplication, snap: sqlite3.Connection, head: int, head_hash: str,
                 progress: Progress | None) -> tuple[str, str] | None:
    rows = snap.execute("SELECT position, hash FROM trail ORDER BY position")
    chain = StoreChain(app, head, progress)
    last = (0, GENESIS)
    for link in chain:
        row = rows.fetchone()
        if row is None or tuple(row) != (link.position, link.hash):
            where = link.position if row is None else min(row[0], link.position)
            return "trail", f"the snapshot's trail differs from the store at position {where}"
        last = (link.position, link.hash)
    if rows.fetchone() is not None:
        return "trail", "the snapshot's trail goes beyond the store"
    if chain.receipt_break is not None:
        return "receipt", chain.receipt_break.detail
    if last != (head, head_hash):
        return "head", "the store's chain does not end in the snapshot's head"
    return None


def _check_cut(app: PmoApplication, head: int, at: datetime) -> tuple[str, str] | None:
    after = app.recorder.log_with_times(head, 1)  # type: ignore[attr-defined]
    if after and after[0][5] is not None and after[0][5] <= micros(at):
        return "head", f"position {after[0][0]} was recorded by as_of, not in the snapshot"
    return None


def _check_views(app: PmoApplication, snap: sqlite3.Connection,
                 at: datetime) -> tuple[str, str] | None:
    expected: dict[tuple[str, str], Any] = {}
    with folded(app, at) as service:
        for name, key, body in _views(service, at):
            expected[(name, key)] = orjson.loads(body)
    found = 0
    for name in VIEWS:
        for key, doc in snap.execute(f"SELECT id, doc FROM {name}"):
            found += 1
            if expected.get((name, key)) != orjson.loads(doc):
                return "view", f"{name} {key} differs from the store's as of {at.isoformat()}"
    if found != len(expected):
        return "view", f"the snapshot holds {found} views, the store gives {len(expected)}"
    return None
