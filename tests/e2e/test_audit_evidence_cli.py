"""Audit evidence as an auditor uses it: ``pmo audit verify|anchor|snapshot`` and the routes."""

from __future__ import annotations

import json
import os
import pty
import sqlite3
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections.audit_verify import contract
from projections.service import build_projections
from tests.e2e.conftest import AUDIT, VIEW, assert_problem, portfolio, proposal
from tests.e2e.test_views_cli import run, stored


def built(tmp_path: Path) -> dict[str, str]:
    env = stored(tmp_path)
    assert run("replay", env=env, cwd=tmp_path)[0] == 0
    return env


def events_file(tmp_path: Path) -> Path:
    return tmp_path / "data" / "events.sqlite"


def test_verify_names_what_differs_and_exits_1(tmp_path: Path) -> None:
    env = built(tmp_path)
    code, out, err = run("audit", "verify", env=env, cwd=tmp_path)
    result = json.loads(out)
    assert code == 0 and result["ok"] is True and result["checked"] == result["store_head"]
    assert err == ""  # no progress bar when stderr is not a terminal
    with sqlite3.connect(events_file(tmp_path)) as conn:
        conn.execute("UPDATE event_times SET recorded_at = recorded_at - 3600000000 "
                     "WHERE position = 5")
    code, out, _ = run("audit", "verify", env=env, cwd=tmp_path)
    result = json.loads(out)
    assert code == 1 and contract(result) == {"ok": False, "broken_at": 5}
    assert result["what"] == "time" and result["checked"] == 4


def test_verify_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    env = built(tmp_path)
    primary, secondary = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "pmo.cli", "audit", "verify"],
                               env={**os.environ, **env}, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=secondary)
    os.close(secondary)
    out, _ = process.communicate(timeout=60)
    shown = b""
    try:
        while chunk := os.read(primary, 4096):
            shown += chunk
    except OSError:
        pass  # the terminal closed with the process
    os.close(primary)
    assert process.returncode == 0 and json.loads(out)["ok"] is True
    assert b"verify [" in shown and b"100.0%" in shown


def test_an_unbuilt_trail_is_not_ok(tmp_path: Path) -> None:
    env = stored(tmp_path)  # events, no trail
    code, out, _ = run("audit", "verify", env=env, cwd=tmp_path)
    result = json.loads(out)
    assert code == 1 and (result["ok"], result["what"], result["checked"]) == (
        False, "unbuilt", 0)


def test_an_anchor_holds_until_the_store_is_edited_and_the_trail_recomputed(
        tmp_path: Path) -> None:
    env = built(tmp_path)
    anchor = tmp_path / "anchor.json"
    code, _, err = run("audit", "anchor", "--output", str(anchor), env=env, cwd=tmp_path)
    key = tmp_path / "data" / "audit-anchor-key.pem"
    assert code == 0 and str(key) in err
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    checkpoint = json.loads(anchor.read_text())
    assert set(checkpoint) == {"position", "head_hash", "recorded_at", "public_key",
                               "signature"}
    code, out, _ = run("audit", "verify", "--anchor", str(anchor), env=env, cwd=tmp_path)
    assert code == 0 and json.loads(out)["ok"] is True
    # The same key signs the next anchor (no second key file).
    code, _, err = run("audit", "anchor", env=env, cwd=tmp_path)
    assert code == 0 and "created" not in err
    # An insider moves a cost back by a day and rebuilds every view, trail included.
    with sqlite3.connect(events_file(tmp_path)) as conn:
        conn.execute("UPDATE event_times SET recorded_at = recorded_at - 86400000000 "
                     "WHERE position = (SELECT MIN(rowid) FROM stored_events "
                     "WHERE topic = 'pmo.project.cost_recorded')")
        conn.execute("UPDATE stored_events SET state = CAST(REPLACE(CAST(state AS TEXT), "
                     "'tester', 'auditor') AS BLOB) WHERE rowid = 3")
    code, out, _ = run("audit", "verify", "--anchor", str(anchor), env=env, cwd=tmp_path)
    result = json.loads(out)
    assert code == 1 and result["ok"] is False and result["what"] == "head"
    checkpoint["head_hash"] = "0" * 64  # and an anchor edited to match fails its signature
    anchor.write_text(json.dumps(checkpoint))
    code, out, _ = run("audit", "verify", "--anchor", str(anchor), env=env, cwd=tmp_path)
    assert code == 1 and json.loads(out)["what"] == "signature"


def test_a_snapshot_holds_every_view_and_the_trail_as_of_its_instant(tmp_path: Path) -> None:
    env = built(tmp_path)
    settings = Settings(data_dir=tmp_path / "data", _env_file=None)
    with sqlite3.connect(events_file(tmp_path)) as conn:
        cut, at_us = conn.execute("SELECT position, recorded_at FROM event_times "
                                  "ORDER BY position LIMIT 1 OFFSET 9").fetchone()
    at = datetime.fromtimestamp(at_us / 1e6, UTC).isoformat()
    live_before = (tmp_path / "data" / "projections.sqlite").read_bytes()
    snap = tmp_path / "evidence.sqlite"
    code, out, err = run("audit", "snapshot", "--as-of", at, "--output", str(snap),
                         env=env, cwd=tmp_path)
    assert code == 0, err
    manifest = json.loads(out)
    assert manifest["head_position"] == cut and manifest["as_of"] == at
    assert (tmp_path / "data" / "projections.sqlite").read_bytes() == live_before
    with sqlite3.connect(snap) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master "
                                             "WHERE type = 'table'")}
        assert tables >= {"manifest", "portfolios", "projects", "programs", "managers",
                          "trail"}
        assert conn.execute("SELECT MAX(position) FROM trail").fetchone()[0] == cut
        docs = {(kind, key): doc for kind in ("portfolio", "project", "program", "manager")
                for key, doc in conn.execute(f"SELECT id, doc FROM {kind}s")}
    assert {kind for kind, _ in docs} == {"portfolio", "project", "program", "manager"}
    app = build_application(settings)
    service = build_projections(settings)
    for (kind, key), doc in docs.items():  # the documents of GET /v1/{kind}s/{id}?as_of=T
        body = service.as_of(app, kind, key, datetime.fromisoformat(at))
        assert body is not None and json.loads(body) == json.loads(doc), (kind, key)
    assert service.as_of(app, "project", "C", datetime.fromisoformat(at)) is None
    assert ("project", "C") not in docs  # proposed after T
    service.close()
    app.close()
    code, out, _ = run("audit", "verify", "--snapshot", str(snap), env=env, cwd=tmp_path)
    assert code == 0 and json.loads(out)["ok"] is True, out
    code, _, err = run("audit", "snapshot", "--as-of", at, "--output", str(snap),
                       env=env, cwd=tmp_path)
    assert code == 2 and "exists" in err
    for extreme in ("9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"):
        code, _, err = run("audit", "snapshot", "--as-of", extreme, "--output",
                           str(tmp_path / "never.sqlite"), env=env, cwd=tmp_path)
        assert code == 2 and "must lie between" in err and "Traceback" not in err
    with sqlite3.connect(snap) as conn:
        conn.execute("UPDATE projects SET doc = REPLACE(doc, '\"actual_cost\"', "
                     "'\"actual_cost_\"')")
    code, out, _ = run("audit", "verify", "--snapshot", str(snap), env=env, cwd=tmp_path)
    assert code == 1 and json.loads(out)["what"] == "view"


def test_a_snapshot_before_the_first_recorded_event_says_it_is_empty(tmp_path: Path) -> None:
    env = built(tmp_path)
    snap = tmp_path / "early.sqlite"
    code, out, err = run("audit", "snapshot", "--as-of", "1971-01-01T00:00:00Z", "--output",
                         str(snap), env=env, cwd=tmp_path)
    assert code == 0, err
    assert json.loads(out)["events"] == 0
    assert "snapshot is empty" in err and "recording time" in err


def test_the_anchor_route_gives_the_head_to_auditors(client: TestClient) -> None:
    for event in (portfolio(), proposal("X1")):
        assert client.post("/v1/events", json=event,
                           headers={**AUDIT, "Authorization": "Bearer pub-key"}).status_code < 300
    verify = client.get("/v1/audit/verify", headers=AUDIT).json()
    assert verify["ok"] is True and verify["checked"] == 2
    head = client.get("/v1/audit/anchor", headers=AUDIT).json()
    assert (head["position"], head["head_hash"]) == (verify["store_head"], verify["head_hash"])
    assert datetime.fromisoformat(head["recorded_at"]).tzinfo is not None
    assert_problem(client.get("/v1/audit/anchor", headers=VIEW), 403)
