"""The ``pmo`` command as a user runs it: ``pmo demo`` and ``pmo serve`` as subprocesses."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from pmo import demo
from pmo.cli import main
from pmo.demo_data import generate
from pmo.settings import Settings
from tests.conftest import POSTGRES_URL, drop_postgres_schema
from tests.e2e.conftest import (
    free_port,
    pmo_command,
    pmo_run,
    portfolio,
    proposal,
    wait_until_up,
)

KEYS = json.dumps({"k": ["publisher", "viewer", "auditor"]})


def test_demo_generator_is_deterministic_and_realistic() -> None:
    events = generate(3)
    assert events == generate(3) and events != generate(4)
    types = {e["type"] for e in events}
    assert {"pmo.project.rejected", "pmo.project.put_on_hold", "pmo.project.resumed",
            "pmo.project.completed", "pmo.project.cancelled", "pmo.project.cost_recorded",
            "pmo.project.status_reported", "pmo.project.milestone_achieved"} <= types
    opened = [e["data"] for e in events if e["type"] == "pmo.portfolio.opened"]
    assert {p["pmo_type"] for p in opened} == {"supportive", "controlling", "directive"}
    assert len({p["currency"] for p in opened}) == 3
    assert sum(e["type"] == "pmo.project.proposed" for e in events) == 100
    assert sum(e["type"] == "pmo.manager.registered" for e in events) == 15


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_every_demo_seed_is_accepted_whole_by_the_governance_rules(tmp_path: Path,
                                                                  seed: int) -> None:
    events = generate(seed)
    counts = demo.load(Settings(data_dir=tmp_path, _env_file=None), events)  # type: ignore[call-arg]
    assert counts == {"accepted": len(events)}


def test_pmo_demo_loads_every_event_and_a_second_run_changes_nothing(tmp_path: Path) -> None:
    env = {"PMO_DATA_DIR": str(tmp_path / "data")}
    count = len(generate(11))
    first = pmo_command("demo", "--seed", "11", env=env, cwd=tmp_path)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert f"{count} events: accepted {count}" in out
    second = pmo_command("demo", "--seed", "11", env=env, cwd=tmp_path)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert f"{count} events: duplicate {count}" in out


@contextlib.contextmanager
def serving(tmp_path: Path, **env: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``pmo serve`` on a free port with ``env``; yields (base URL, process), then stops it."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = pmo_command("serve", "--port", str(port), "--log-level", "warning",
                         env={"PMO_DATA_DIR": str(tmp_path / "data"), **env}, cwd=tmp_path)
    try:
        wait_until_up(base, server)
        yield base, server
    finally:
        server.terminate()
        server.communicate(timeout=30)


def publish_pair(base: str) -> dict[str, str]:
    """A portfolio and a proposal through POST /v1/events; the headers used."""
    headers = {"Authorization": "Bearer k", "Content-Type": "application/json"}
    stored = httpx.post(f"{base}/v1/events", content=orjson.dumps(
        [portfolio(), proposal("P-1")]), headers=headers)
    assert [r["status"] for r in stored.json()["results"]] == ["accepted", "accepted"]
    return headers


def test_pmo_serve_answers_over_http_then_stops(tmp_path: Path) -> None:
    with serving(tmp_path, PMO_API_KEYS=KEYS) as (base, server):
        headers = publish_pair(base)
        history = httpx.get(f"{base}/v1/projects/P-1/history", headers=headers)
        assert history.json()["items"][0]["type"] == "pmo.project.proposed"
        assert httpx.get(f"{base}/readyz").status_code == 200
        assert httpx.post(f"{base}/v1/events", json=portfolio()).status_code == 401
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert server.returncode in (0, -signal.SIGTERM)


def test_pmo_serve_without_keys_says_how_to_set_them(tmp_path: Path) -> None:
    port = free_port()
    server = pmo_command("serve", "--port", str(port), env={
        "PMO_DATA_DIR": str(tmp_path / "data"), "PMO_API_KEYS": "{}"}, cwd=tmp_path)
    try:
        wait_until_up(f"http://127.0.0.1:{port}", server)
        response = httpx.post(f"http://127.0.0.1:{port}/v1/events", json=portfolio(),
                              headers={"Authorization": "Bearer anything"})
        assert response.status_code == 401
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert "PMO_API_KEYS" in err


def test_pmo_serve_on_postgresql_creates_its_schemas(tmp_path: Path) -> None:
    """Both stores on PostgreSQL, in schemas that do not exist yet; views fed by the child."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    events_url = f"{POSTGRES_URL}?schema={schema}_events"
    views_url = f"{POSTGRES_URL}?schema={schema}_views"
    try:
        with serving(tmp_path, PMO_API_KEYS=KEYS, PMO_EVENT_STORE_URL=events_url,
                     PMO_PROJECTION_STORE_URL=views_url) as (base, _):
            headers = publish_pair(base)
            folio = httpx.get(f"{base}/v1/portfolios/PF-1", headers=headers).json()
            assert folio["projects_by_state"]["proposed"] == 1
    finally:
        for url in (events_url, views_url):
            drop_postgres_schema(url)


def test_pmo_demo_over_the_api_then_again_changes_nothing(tmp_path: Path) -> None:
    count = len(generate(7, 20))
    with serving(tmp_path, PMO_API_KEYS=KEYS) as (base, _):
        for status in ("accepted", "duplicate"):
            demo_run = pmo_command("demo", "--projects", "20", "--api", base,
                                   env={"PMO_DEMO_API_KEY": "k"}, cwd=tmp_path)
            out, err = demo_run.communicate(timeout=120)
            assert demo_run.returncode == 0, err
            assert f"{count} events: {status} {count}" in out


@pytest.mark.parametrize("args, says", [
    (("serve", "--port", "99999"), "argument --port: '99999' is not a port"),
    (("serve", "--port", "-1"), "argument --port: '-1' is not a port"),
    (("ingest", "--metrics-port", "0"), "argument --metrics-port: '0' is not a port"),
    (("demo", "--projects", "-5"), "argument --projects: '-5' is not a whole number of at least 1"),
    (("publish", "--batch", "0", "x.jsonl"), "argument --batch: '0' is not a whole number"),
    (("publish", "."), "pmo publish: not a regular file: ."),
    (("demo", "--api", "notaurl"), "argument --api: 'notaurl' is not an http(s) URL"),
    (("publish", "x.jsonl", "--api", "ftp://host"), "argument --api: 'ftp://host' is not"),
    (("publish", "x.jsonl", "--api", "http://[::1"), "argument --api: invalid"),
])
def test_a_bad_number_or_file_is_a_usage_error_naming_it(tmp_path: Path, args: tuple[str, ...],
                                                        says: str) -> None:
    """Found trying the CLI: ``serve --port 99999`` served on another port, ``--port -1``
    failed after start-up with "Servname not supported", ``demo --projects -5`` loaded a
    demo anyway."""
    process = pmo_run(*args, env={"PMO_DATA_DIR": str(tmp_path / "data")}, cwd=tmp_path)
    out, err = process.stdout, process.stderr
    assert process.returncode == 2, (out, err)
    assert says in err
    assert "Traceback" not in err
    assert not (tmp_path / "data").exists()  # refused before touching a store


@pytest.mark.parametrize("env, code, says", [
    ({"PMO_API_KEYS": "notjson"}, 2,
     'invalid configuration: error parsing value for field "api_keys"'),
    ({"PMO_EVENT_STORE_URL": "postgresql://pmo:not-the-password@127.0.0.1:5432/pmo"}, 1,
     "password authentication failed"),
    ({"PMO_EVENT_STORE_URL": "postgresql://pmo:pmo@127.0.0.1:1/pmo"}, 1, "Connection refused"),
    ({"PMO_DATA_DIR": "/proc/no-such-dir"}, 1, "No such file or directory: '/proc/no-such-dir'"),
])
def test_a_configuration_or_store_the_machine_refuses_is_said_in_a_line(
        tmp_path: Path, env: dict[str, str], code: int, says: str) -> None:
    """Found trying the CLI: each of these printed a traceback."""
    process = pmo_run("serve", "--port", str(free_port()),
                      env={"PMO_DATA_DIR": str(tmp_path / "data"), **env}, cwd=tmp_path)
    out, err = process.stdout, process.stderr
    assert process.returncode == code, (out, err)
    assert says in err
    assert "Traceback" not in err and "not-the-password" not in err + out


@pytest.mark.parametrize("name, value, says", [
    ("PMO_API_KEYS", '{"sekrit-key-1": ["bogus"]}', "PMO_API_KEYS[<a key>][0]: Input should be"),
    ("PMO_EVENT_STORE_URL", "postgresql://u:sekrit@127.0.0.1:99999999/db",
     "PMO_EVENT_STORE_URL: Value error, Port out of range"),
    ("PMO_PROJECTION_STORE_URL", "postgresq://u:sekrit@127.0.0.1/db",
     "unsupported store URL 'postgresq://u:***@127.0.0.1/db'"),
])
def test_an_invalid_configuration_names_the_setting_and_never_echoes_a_secret(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        name: str, value: str, says: str) -> None:
    """pydantic's own text of the error repeated the value (a store URL with its password)
    and the error's path (an API key, a key of PMO_API_KEYS) on stderr, and so in logs."""
    # In-process: the settings fail before any store is touched.
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    monkeypatch.setenv("PMO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv(name, value)
    assert main(["serve", "--port", "8000"]) == 2
    err = capsys.readouterr().err
    assert "invalid configuration" in err and says in err, err
    assert "sekrit" not in err
