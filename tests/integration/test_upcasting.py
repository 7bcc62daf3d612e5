"""Schema evolution on a store written before it: ``tests/fixtures/v1_store.sqlite``.

The fixture holds only version-1 events (``pmo.project.status_reported`` had no
``status_date``), written through the ingest path by the code of its day, with the
answers the service gave then (``v1_store_expected.json``). Today's code reads it: the
replay gives the same views (plus the derived ``status_date``), history shows the
upcast form, the stored bytes are untouched and the audit chain still verifies.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ingest.schemas import TYPES
from pmo import replay
from pmo.bootstrap import build_services
from pmo.settings import Settings
from tests.fixtures.v1_store import EXPECTED, HISTORY_OF, KEY, ROLES, STORE, answers, stable

STATUS = "pmo.project.status_reported"
PUB = {"Authorization": "Bearer pub-key"}
AUDIT = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A copy of the fixture as the event store (the fixture itself is never opened to
    write), and an empty projection store."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copyfile(STORE, data / "events.sqlite")
    return Settings(data_dir=data, api_keys={KEY: ROLES, "pub-key": ["publisher"]},  # type: ignore[dict-item]
                    poll_interval_ms=5, _env_file=None)  # type: ignore[call-arg]


def pmo_replay(settings: Settings) -> None:
    """``pmo replay``, all projections, as the command runs it."""
    parser = argparse.ArgumentParser()
    replay.add_arguments(parser)
    assert replay.run(parser.parse_args([]), settings) == 0


@contextmanager
def served(settings: Settings, *, live: bool = False) -> Iterator[TestClient]:
    services = build_services(settings)
    try:
        if live:
            assert services.runner is not None
            services.runner.start()
        with TestClient(create_app(services), raise_server_exceptions=False) as client:
            yield client
    finally:
        services.close()


def stored_rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT rowid, originator_id, originator_version, topic, "
                          "state FROM stored_events ORDER BY rowid").fetchall()
    db.close()
    return rows


def day_of(time: str) -> str:
    return datetime.fromisoformat(time).astimezone(UTC).date().isoformat()


def expected() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(EXPECTED.read_text())
    return loaded


def test_the_fixture_holds_only_v1_events_of_every_kind() -> None:
    rows = stored_rows(STORE)
    reports = [orjson.loads(r[4]) for r in rows if r[3] == STATUS]
    assert set(TYPES) <= {r[3] for r in rows} and len(reports) > 20
    versioned = {r[3] for r in rows if "class_version" in orjson.loads(r[4])}
    assert versioned == {"pmo.manager.registered"}  # its v2 (grade) came earlier
    assert all("status_date" not in s for s in reports)


def test_a_replay_of_the_v1_store_answers_as_before_plus_the_derived_status_date(
        settings: Settings) -> None:
    pmo_replay(settings)
    with served(settings) as client:
        got = answers(client)
        histories = {p["project_id"]: client.get(
            f"/v1/projects/{p['project_id']}/history", headers=AUDIT).json()["items"]
            for p in got["projects"]}
    before = expected()
    # The audit chain hashes the stored bytes: the same head hash as before v2 existed.
    assert got["verify"] == before["verify"] and got["verify"]["ok"] is True
    for manager in before["managers"]:  # written when the view listed them as assigned;
        manager["projects"].sort()  # since #10 it lists them by id (from the projects)
    for portfolio in got["portfolios"]:  # added since (CONTRACT section 4's variance)
        portfolio.pop("budget_variance")
    for kind in ("portfolios", "managers"):
        assert stable(got[kind]) == stable(before[kind])
    assert len(got["projects"]) == len(before["projects"]) == 12
    reported = 0
    for now, then in zip(got["projects"], before["projects"], strict=True):
        rest = {k: v for k, v in now.items() if k != "status_date"}
        assert stable(rest) == stable(then)
        reports = [e for e in histories[now["project_id"]] if e["type"] == STATUS]
        assert now["status_date"] == (day_of(reports[-1]["time"]) if reports else None)
        reported += bool(reports)
    assert reported >= 6


def test_history_shows_the_upcast_form_and_the_stored_bytes_stay_as_written(
        settings: Settings) -> None:
    pmo_replay(settings)
    with served(settings) as client:
        response = client.get(f"/v1/projects/{HISTORY_OF}/history",
                              params={"limit": 10_000}, headers=AUDIT)
    assert response.status_code == 200
    now, then = response.json()["items"], expected()["history"]
    assert len(now) == len(then) == 37
    upcast = 0
    for entry, before in zip(now, then, strict=True):
        if entry["type"] == STATUS:
            assert "undecodable" not in entry
            assert entry["data"] == {**before["data"], "status_date": day_of(before["time"])}
            assert {k: v for k, v in entry.items() if k != "data"} == {
                k: v for k, v in before.items() if k != "data"}
            upcast += 1
        else:
            assert entry == before
    assert upcast == 12
    # Read on every path above, rewritten on none: every stored row is the fixture's.
    assert stored_rows(settings.event_store.path) == stored_rows(STORE)


def post_status(client: TestClient, n: int, **extra: Any) -> int:
    body = {"specversion": "1.0", "id": f"v2-status-{n}", "source": "urn:pmo:status",
            "type": STATUS, "subject": HISTORY_OF, "time": f"2026-11-2{6 + n}T10:00:00Z",
            "actor": "status-bot",
            "data": {"overall": "red", "scope": "green", "schedule": "red",
                     "budget": "amber", "percent_complete": f"{71 + n}",
                     "summary": "slipping", **extra}}
    response = client.post("/v1/events", content=orjson.dumps(body),
                           headers={**PUB, "content-type": "application/cloudevents+json"})
    assert response.status_code == 201, response.text
    position: int = response.json()["position"]
    return position


def test_new_reports_are_v2_and_a_mixed_history_folds_right_live_and_replayed(
        settings: Settings) -> None:
    pmo_replay(settings)
    with served(settings, live=True) as client:
        last_v1 = client.get(f"/v1/projects/{HISTORY_OF}", headers=AUDIT).json()
        first = post_status(client, 1)  # no status_date: the day of its time
        second = post_status(client, 2, status_date="2026-11-25")  # given by the publisher
        assert client.get("/v1/audit/verify", headers=AUDIT).json()["ok"] is True
        live = client.get(f"/v1/projects/{HISTORY_OF}",
                          params={"min_position": second}, headers=AUDIT).json()
        items = client.get(f"/v1/projects/{HISTORY_OF}/history", headers=AUDIT).json()["items"]
        as_of = client.get(f"/v1/projects/{HISTORY_OF}",
                           params={"as_of": items[-2]["recorded_at"]}, headers=AUDIT).json()
    rows = {r[0]: orjson.loads(r[4]) for r in stored_rows(settings.event_store.path)}
    assert rows[first]["class_version"] == rows[second]["class_version"] == 2
    assert rows[first]["status_date"]["_data_"] == "2026-11-27"
    assert rows[second]["status_date"]["_data_"] == "2026-11-25"
    v1_reports = [e for e in expected()["history"] if e["type"] == STATUS]
    assert last_v1["status_date"] == day_of(v1_reports[-1]["time"])
    assert live["status_date"] == "2026-11-25" and live["health"]["overall"] == "red"
    assert as_of["status_date"] == "2026-11-27" and as_of["percent_complete"] == 72
    reports = [e for e in items if e["type"] == STATUS]
    assert [e["data"]["status_date"] for e in reports[-3:]] == [
        day_of(reports[-3]["time"]), "2026-11-27", "2026-11-25"]
    # The same mixed v1/v2 history, folded again from scratch by a replay.
    pmo_replay(settings)
    with served(settings) as client:
        replayed = client.get(f"/v1/projects/{HISTORY_OF}", headers=AUDIT).json()
    assert stable(replayed) == stable(live)
