"""The audit trail detects tampering with the real SQLite event store file."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from domain.application import PmoApplication
from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections.audit_read import AuditFilter, export_csv, export_jsonl, page, verify
from projections.runner import EmbeddedRunner
from projections.service import ProjectionService, build_projections
from tests.integration.test_projection_views import Publisher, seed


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[tuple[PmoApplication, ProjectionService, Path]]:
    settings = Settings(data_dir=tmp_path, _env_file=None)
    app = build_application(settings)
    service = build_projections(settings)
    seed(Publisher(app))
    EmbeddedRunner(app, service).catch_up()
    assert verify(service.db, app)["ok"]
    yield app, service, Path(settings.event_store.path)
    service.close()


def tamper(path: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    with sqlite3.connect(path) as conn:
        for sql, params in statements:
            conn.execute(sql, params)


def broken(result: dict[str, object]) -> tuple[object, object]:
    assert result["ok"] is False, result
    return result["broken_at"], result["what"]


def test_verify_counts_every_recorded_event(recorded: tuple[PmoApplication, ProjectionService,
                                                           Path]) -> None:
    app, service, _ = recorded
    head = app.recorder.max_notification_id()
    result = verify(service.db, app)
    assert result["ok"] is True and result["checked"] == head
    assert result["store_head"] == result["trail_head"] == head
    assert result["head_hash"] == service.db.query(
        "SELECT hash FROM pv_audit_chain WHERE position = ?", (head,))[0][0]


def test_verify_finds_a_modified_event(recorded: tuple[PmoApplication, ProjectionService,
                                                       Path]) -> None:
    app, service, path = recorded
    tamper(path, ("UPDATE stored_events SET state = CAST(REPLACE(CAST(state AS TEXT), "
                  "'100.25', '1.25') AS BLOB) WHERE rowid = (SELECT rowid FROM stored_events "
                  "WHERE topic = 'pmo.project.cost_recorded' ORDER BY rowid LIMIT 1)", ()))
    first_cost = service.db.query("SELECT MIN(position) FROM pv_audit WHERE type = ?",
                                  ("pmo.project.cost_recorded",))[0][0]
    assert broken(verify(service.db, app)) == (first_cost, "body")


def test_verify_finds_a_deleted_event(recorded: tuple[PmoApplication, ProjectionService,
                                                      Path]) -> None:
    app, service, path = recorded
    tamper(path, ("DELETE FROM stored_events WHERE rowid = 7", ()))
    assert broken(verify(service.db, app)) == (7, "missing")


def test_verify_finds_two_swapped_events(recorded: tuple[PmoApplication, ProjectionService,
                                                         Path]) -> None:
    app, service, path = recorded
    with sqlite3.connect(path) as conn:
        (t5, s5), (t9, s9) = conn.execute(
            "SELECT topic, state FROM stored_events WHERE rowid IN (5, 9) ORDER BY rowid")
    tamper(path, ("UPDATE stored_events SET topic = ?, state = ? WHERE rowid = 5", (t9, s9)),
           ("UPDATE stored_events SET topic = ?, state = ? WHERE rowid = 9", (t5, s5)))
    assert broken(verify(service.db, app)) == (5, "body")


def test_verify_finds_a_rewritten_trail(recorded: tuple[PmoApplication, ProjectionService,
                                                        Path]) -> None:
    app, service, _ = recorded
    with service.db.transaction() as tx:
        tx.execute("UPDATE pv_audit_chain SET hash = ? WHERE position = 3", ("f" * 64,))
    assert broken(verify(service.db, app)) == (3, "chain")


def test_trail_filters_pages_and_exports(recorded: tuple[PmoApplication, ProjectionService,
                                                         Path]) -> None:
    _, service, _ = recorded
    items, cursor = page(service.db, AuditFilter(aggregate="A"), 0, 3)
    assert [i["version"] for i in items] == [1, 2, 3] and cursor == items[-1]["position"]
    assert cursor is not None
    assert {i["aggregate_id"] for i in items} == {"A"}
    rest, end = page(service.db, AuditFilter(aggregate="A"), cursor, 100)
    assert end is None and next(i["version"] for i in rest) == 4
    costs, _ = page(service.db, AuditFilter(type="pmo.project.cost_recorded"), 0, 100)
    assert len(costs) == 2 and costs[1]["prev_hash"] != "0" * 64
    everything, _ = page(service.db, AuditFilter(), 0, 1000)
    for before, after in itertools.pairwise(everything):
        assert after["prev_hash"] == before["hash"]
    lines = b"".join(export_jsonl(service.db, AuditFilter())).splitlines()
    assert [orjson.loads(line) for line in lines] == everything
    csv_lines = b"".join(export_csv(service.db, AuditFilter())).decode().splitlines()
    assert csv_lines[0].startswith("position,aggregate_id") and len(csv_lines) == len(lines) + 1


def test_a_trail_of_the_older_layout_is_dropped_and_rebuilt(tmp_path: Path) -> None:
    """Before the digest column the trail hashed whole events in one step: such a table is
    dropped with the audit's positions (not the other views'), and rebuilt from the store."""
    settings = Settings(data_dir=tmp_path, _env_file=None)
    app = build_application(settings)
    seed(Publisher(app))
    with sqlite3.connect(settings.projection_store.path) as conn:
        conn.execute("CREATE TABLE pv_audit (position INTEGER PRIMARY KEY, aggregate_id TEXT, "
                     "store_id TEXT NOT NULL, version INTEGER NOT NULL, type TEXT NOT NULL, "
                     "time TEXT, recorded_us INTEGER NOT NULL, actor TEXT, source TEXT, "
                     "event_id TEXT, hash TEXT NOT NULL)")
        conn.execute("INSERT INTO pv_audit VALUES (1, 'P', 'x', 1, 'pmo.portfolio.opened', "
                     "NULL, 0, NULL, NULL, NULL, ?)", ("a" * 64,))
        conn.execute("CREATE TABLE pv_audit_pending (position INTEGER PRIMARY KEY)")
        conn.execute("CREATE TABLE pv_tracking (projection TEXT NOT NULL, key TEXT NOT NULL, "
                     "value INTEGER NOT NULL, PRIMARY KEY (projection, key))")
        conn.executemany("INSERT INTO pv_tracking VALUES (?, 'store', 1)",
                         [("audit",), ("projects",)])
    service = build_projections(settings)
    assert "digest" in service.db.columns("pv_audit")
    assert service.db.columns("pv_audit_pending") == set()
    assert service.audit.tracking() == {}  # starts again from the first event
    assert service.projects.tracking() == {"store": 1}  # the other views keep theirs
    EmbeddedRunner(app, service).catch_up()
    stored = len(app.recorder.select_notifications(None, 10**6))
    assert verify(service.db, app)["checked"] == stored
    service.close()
    app.close()


def test_a_trail_of_digest_definition_1_is_dropped_and_rebuilt(tmp_path: Path) -> None:
    """A trail whose digests did not cover recording time and receipt (no pv_audit_meta)
    is dropped with the audit's positions on start, then rebuilt under definition 2."""
    settings = Settings(data_dir=tmp_path, _env_file=None)
    app = build_application(settings)
    seed(Publisher(app))
    service = build_projections(settings)
    EmbeddedRunner(app, service).catch_up()
    with service.db.transaction() as tx:
        tx.execute("DROP TABLE pv_audit_meta")
        tx.execute("UPDATE pv_audit_chain SET hash = ?", ("e" * 64,))  # definition 1's
    service.close()
    service = build_projections(settings)
    assert service.audit.count() == 0 and service.audit.tracking() == {}
    assert service.projects.tracking() != {}  # the other views keep theirs
    assert verify(service.db, app)["what"] == "unbuilt"
    EmbeddedRunner(app, service).catch_up()
    assert verify(service.db, app)["ok"] is True
    service.close()
    app.close()
