"""The whole service over HTTP: real SQLite stores in a temporary directory, the real runner."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import Services
from pmo.bootstrap import build_services
from pmo.settings import Settings

KEYS: dict[str, list[Any]] = {
    "pub-key": ["publisher"], "view-key": ["viewer"], "audit-key": ["auditor"],
    "admin-key": ["admin"], "all-key": ["publisher", "viewer", "auditor", "admin"],
}
BODY_LIMIT = 64 * 1024
INGEST_BATCH = 50


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


PUB = auth("pub-key")
AUDIT = auth("audit-key")
VIEW = auth("view-key")


def cloud_event(type_: str, subject: str, data: dict[str, Any], *, id_: str | None = None,
                source: str = "urn:test") -> dict[str, Any]:
    return {"specversion": "1.0", "id": id_ or f"{type_}:{subject}:{len(str(data))}",
            "source": source, "type": type_, "subject": subject,
            "time": "2026-03-02T09:30:00Z", "actor": "tester", "data": data}


def portfolio(key: str = "PF-1", pmo_type: str = "controlling",
              envelope: str = "1000000.00") -> dict[str, Any]:
    return cloud_event("pmo.portfolio.opened", key, {
        "name": f"Portfolio {key}", "pmo_type": pmo_type, "currency": "EUR",
        "budget_envelope": envelope, "owner": "Olga"}, id_=f"open-{key}")


def proposal(key: str, portfolio_id: str = "PF-1", budget: str = "100000.00") -> dict[str, Any]:
    return cloud_event("pmo.project.proposed", key, {
        "portfolio_id": portfolio_id, "name": f"Project {key}", "sponsor": "COO",
        "budget_requested": budget, "planned_start": "2026-04-01",
        "planned_finish": "2026-12-15"}, id_=f"propose-{key}")


def approval(key: str, budget: str = "100000.00") -> dict[str, Any]:
    return cloud_event("pmo.project.approved", key, {"approved_budget": budget,
                                                     "approver": "Steering"},
                       id_=f"approve-{key}")


def cost(key: str, amount: str, n: int) -> dict[str, Any]:
    return cloud_event("pmo.project.cost_recorded", key, {
        "amount": amount, "currency": "EUR", "incurred_on": "2026-05-01",
        "category": "labour", "reference": f"inv-{n}"}, id_=f"cost-{key}-{n}")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", api_keys=KEYS, max_body_bytes=BODY_LIMIT,
                    ingest_batch_size=INGEST_BATCH, poll_interval_ms=5, _env_file=None)  # type: ignore[call-arg]


@contextmanager
def running(settings: Settings) -> Iterator[Services]:
    """The embedded service with its runner started; closed after (PostgreSQL pools too)."""
    services = build_services(settings)
    assert services.runner is not None
    services.runner.start()
    try:
        yield services
    finally:
        services.close()


@contextmanager
def running_client(settings: Settings) -> Iterator[TestClient]:
    """An HTTP client of ``running(settings)``."""
    with running(settings) as services, TestClient(
            create_app(services), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    with running(settings) as services:
        yield services


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        yield client


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://") and body["title"]
    return body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pmo_command(*args: str, env: dict[str, str], **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pmo.cli", *args], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def pmo_run(*args: str, env: dict[str, str], timeout: float = 60,
            **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``pmo`` run to its end; killed if it outlives ``timeout`` (a command expected to
    stop at once that serves instead must not outlive its test)."""
    return subprocess.run([sys.executable, "-m", "pmo.cli", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout, check=False,
                          **kwargs)


def wait_until_up(base_url: str, process: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"pmo serve exited: {process.communicate()}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"pmo serve did not answer at {base_url} within {timeout}s")


def publish_and_wait(client: TestClient, services: Services,
                     *events: dict[str, Any]) -> datetime:
    """Store ``events`` (each accepted); the instant after, once the views hold them."""
    response = client.post("/v1/events", json=list(events), headers=PUB)
    assert response.status_code == 200, response.text
    assert all(r["status"] == "accepted" for r in response.json()["results"]), response.text
    assert services.runner is not None
    assert services.runner.wait_for(services.app.recorder.max_notification_id() or 0, 10)
    return datetime.now(UTC)


def read_until_closed(sock: socket.socket, timeout_s: float = 10.0) -> tuple[bytes, bool]:
    """Everything the server sends; True if it closed (or reset) the connection."""
    sock.settimeout(timeout_s)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return data, False
    except OSError:
        return data, True
    return data, True
