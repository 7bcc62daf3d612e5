"""The CLI's edges (issue 9): ``pmo audit export`` never writes onto a store and neutralises
formula cells; ``pmo publish --api`` reports a broken line on its own and sends the rest."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from domain.portfolio import Portfolio
from domain.project import Project
from domain.values import PmoType
from pmo.bootstrap import build_services
from pmo.settings import Settings
from projections.audit_read import csv_cell
from tests.e2e.conftest import AUDIT, KEYS, pmo_command, portfolio, proposal
from tests.e2e.test_cli import serving
from tests.old_writer import OldWriter

FORMULAS = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+2", "-3+4", "@SUM(A1)",
            "\tTAB", "\rCR"]


def test_csv_cells_that_start_like_a_formula_are_neutralised() -> None:
    for text in FORMULAS:
        assert csv_cell(text) == "'" + text
    for text in ("PRJ-1", "a=b", "urn:x", "2026-01-01T00:00:00+00:00", "", "'quoted"):
        assert csv_cell(text) == text
    assert csv_cell(None) == "" and csv_cell(42) == 42


@pytest.fixture
def stores(tmp_path: Path) -> Settings:
    """SQLite stores whose trail holds publisher strings that start like formulas."""
    settings = Settings(data_dir=tmp_path / "data", api_keys=KEYS, poll_interval_ms=5,
                        _env_file=None)  # type: ignore[call-arg]
    services = build_services(settings)
    old = OldWriter(source=FORMULAS[0], actor=FORMULAS[3], id_prefix="-")
    folio = old.create(Portfolio, Portfolio.Opened, "=PF", name="n", owner="o",
                       pmo_type=PmoType("supportive"), currency="EUR",
                       budget_envelope=Decimal(1))
    project = old.create(Project, Project.Proposed, "+PRJ", portfolio_id="=PF",
                         program_id=None, name="n", sponsor="s",
                         budget_requested=Decimal(1), planned_start=date(2026, 1, 1),
                         planned_finish=date(2026, 2, 1), objectives=[], priority=None)
    services.app.save(folio, project)
    assert services.runner is not None
    services.runner.start()
    assert services.runner.wait_for(services.app.recorder.max_notification_id() or 0, 30)
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        answer = client.get("/v1/audit/export?format=csv", headers=AUDIT)
        assert answer.status_code == 200
        _assert_neutralised(answer.text)
    services.close()
    return settings


def _assert_neutralised(text: str) -> None:
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 2
    for row in rows:
        assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
                   for cell in row.values())
    assert {r["aggregate_id"] for r in rows} == {"'=PF", "'+PRJ"}
    assert {r["actor"] for r in rows} == {"'" + FORMULAS[3]}
    assert {r["source"] for r in rows} == {"'" + FORMULAS[0]}
    assert {r["event_id"] for r in rows} == {"'-1", "'-2"}


def _env(settings: Settings) -> dict[str, str]:
    return {"PMO_DATA_DIR": str(settings.data_dir)}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pmo_audit_export_neutralises_formula_cells(stores: Settings, tmp_path: Path) -> None:
    out = tmp_path / "trail.csv"
    process = pmo_command("audit", "export", "--format", "csv", "--output", str(out),
                          env=_env(stores))
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    _assert_neutralised(out.read_text())


def test_pmo_audit_export_refuses_to_write_onto_a_store(stores: Settings,
                                                        tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    other.write_bytes(Path(stores.event_store.path).read_bytes())
    targets = {Path(stores.event_store.path): "event store",
               Path(stores.projection_store.path): "projection store",
               other: "SQLite database"}
    for target, why in targets.items():
        before = _digest(target)
        process = pmo_command("audit", "export", "--format", "csv", "--output", str(target),
                              env=_env(stores))
        _, err = process.communicate(timeout=60)
        assert process.returncode != 0 and why in err, err
        assert _digest(target) == before  # untouched


def test_pmo_audit_export_into_a_missing_directory_is_one_clear_line(
        stores: Settings, tmp_path: Path) -> None:
    process = pmo_command("audit", "export", "--output", str(tmp_path / "nope" / "t.csv"),
                          env=_env(stores))
    _, err = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "does not exist" in err


def test_pmo_audit_export_into_a_closed_pipe_is_quiet(stores: Settings) -> None:
    """`pmo audit export | head`: the reader leaves early; no error, no traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # a reader that has gone: the first write meets EPIPE
    try:
        process = subprocess.Popen([sys.executable, "-m", "pmo.cli", "audit", "export"],
                                   env={**os.environ, **_env(stores)}, stdout=write_end,
                                   stderr=subprocess.PIPE, text=True)
        _, err = process.communicate(timeout=60)
    finally:
        os.close(write_end)
    assert process.returncode == 0, err
    assert err == ""


def test_pmo_publish_reports_a_broken_line_and_sends_the_others(tmp_path: Path) -> None:
    keys = json.dumps({"k": ["publisher", "viewer"]})
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join([json.dumps(portfolio()), "{not json",
                                 json.dumps(proposal("X1"))]) + "\n")
    with serving(tmp_path, PMO_API_KEYS=keys) as (base, _):
        process = pmo_command("publish", str(events), "--api", base,
                              env={"PMO_PUBLISH_API_KEY": "k", "PMO_DATA_DIR": str(tmp_path)})
        out, err = process.communicate(timeout=60)
        assert process.returncode == 1, (out, err)
        assert "line 2:" in err and "Traceback" not in err
        assert "accepted': 2" in out
        deadline = time.monotonic() + 30  # the views follow the store within moments
        while True:
            project = httpx.get(f"{base}/v1/projects/X1",
                                headers={"Authorization": "Bearer k"})
            if project.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert project.status_code == 200, project.text


def test_pmo_publish_of_a_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    process = pmo_command("publish", str(tmp_path / "missing.jsonl"), "--api",
                          "http://127.0.0.1:9", env={"PMO_PUBLISH_API_KEY": "k"})
    _, err = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "Traceback" not in err and "no such file" in err
