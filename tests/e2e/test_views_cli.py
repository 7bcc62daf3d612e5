"""``pmo replay`` and ``pmo audit`` as a user runs them, on a real store."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import orjson

from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections.audit_verify import contract
from projections.service import build_projections
from tests.e2e.conftest import pmo_command
from tests.integration.test_projection_views import Publisher, seed


def stored(tmp_path: Path) -> dict[str, str]:
    settings = Settings(data_dir=tmp_path / "data", _env_file=None)
    app = build_application(settings)
    seed(Publisher(app))
    app.close()
    return {"PMO_DATA_DIR": str(tmp_path / "data")}


def run(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    process = pmo_command(*args, env=env, cwd=cwd)
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


def test_replay_rebuilds_every_view_with_a_progress_bar(tmp_path: Path) -> None:
    env = stored(tmp_path)
    code, out, err = run("replay", env=env, cwd=tmp_path)
    assert code == 0, err
    assert "events/s" in out and "100.0%" in err
    service = build_projections(Settings(data_dir=tmp_path / "data", _env_file=None))
    body = service.project("A")
    assert body is not None and orjson.loads(body)["actual_cost"] == "200.00"
    assert all(s["state"] == "live" for s in service.status(None))
    service.close()
    code, _, err = run("replay", "--projection", "projects", "--until",
                       "2000-01-01T00:00:00Z", env=env, cwd=tmp_path)
    assert code == 2 and "--into URL" in err  # never rewinds the live views
    into = f"sqlite:///{tmp_path / 'old.sqlite'}"
    code, out, _ = run("replay", "--projection", "projects", "--until",
                       "2000-01-01T00:00:00Z", "--into", into, env=env, cwd=tmp_path)
    assert code == 0 and "replayed 0 positions into projects" in out
    service = build_projections(Settings(data_dir=tmp_path / "data", _env_file=None))
    assert service.project("A") is not None  # the live view is still there
    service.close()
    assert run("replay", "--projection", "nope", env=env, cwd=tmp_path)[0] == 2


def test_replay_until_a_cut_ends_its_bar_at_the_cut(tmp_path: Path) -> None:
    env = stored(tmp_path)
    with sqlite3.connect(tmp_path / "data" / "events.sqlite") as conn:
        cut, at_us = conn.execute("SELECT position, recorded_at FROM event_times "
                                  "ORDER BY position LIMIT 1 OFFSET 2").fetchone()
        head = conn.execute("SELECT MAX(position) FROM event_times").fetchone()[0]
    assert cut < head
    at = datetime.fromtimestamp(at_us / 1e6, UTC).isoformat()
    into = f"sqlite:///{tmp_path / 'cut.sqlite'}"
    code, out, err = run("replay", "--until", at, "--into", into, env=env, cwd=tmp_path)
    assert code == 0 and f"replayed {cut} positions" in out, err
    last = err.rstrip("\n").split("\r")[-1]  # the bar as it was left on the terminal
    assert "100.0%" in last and f" {cut}/{cut} " in last, last


def test_audit_verify_exits_1_once_the_store_is_altered(tmp_path: Path) -> None:
    env = stored(tmp_path)
    assert run("replay", env=env, cwd=tmp_path)[0] == 0
    code, out, _ = run("audit", "verify", env=env, cwd=tmp_path)
    assert code == 0 and json.loads(out)["ok"] is True
    with sqlite3.connect(tmp_path / "data" / "events.sqlite") as conn:
        conn.execute("DELETE FROM stored_events WHERE rowid = 4")
    code, out, _ = run("audit", "verify", env=env, cwd=tmp_path)
    assert code == 1 and contract(json.loads(out)) == {"ok": False, "broken_at": 4}


def test_audit_export_writes_csv_and_jsonl(tmp_path: Path) -> None:
    env = stored(tmp_path)
    assert run("replay", env=env, cwd=tmp_path)[0] == 0
    target = tmp_path / "trail.csv"
    assert run("audit", "export", "--format", "csv", "--output", str(target), env=env,
               cwd=tmp_path)[0] == 0
    rows = target.read_text().splitlines()
    assert rows[0].startswith("position,aggregate_id") and len(rows) > 10
    code, out, _ = run("audit", "export", "--format", "jsonl", env=env, cwd=tmp_path)
    entries = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(entries) == len(rows) - 1
    assert datetime.fromisoformat(entries[0]["recorded_at"]) < datetime.now(UTC)
