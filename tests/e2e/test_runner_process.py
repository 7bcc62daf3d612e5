"""``pmo serve``'s default: the views fed from a child process (``pmo.runner_process``).

Over HTTP, with the real child on real SQLite stores: a read right after a write
sees it, a rebuild is carried out by the child, and a child killed with SIGKILL
is replaced and resumes from its committed positions: no event lost, none
counted twice.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.routers.projections import GENERIC_ERROR
from pmo.bootstrap import build_services
from pmo.runner_process import RunnerProcess
from pmo.settings import Settings
from tests.e2e.conftest import (
    PUB,
    VIEW,
    approval,
    auth,
    cloud_event,
    cost,
    portfolio,
    proposal,
)

ADMIN = auth("admin-key")


def started(key: str) -> dict[str, Any]:
    return cloud_event("pmo.project.started", key, {"started_on": "2026-04-02"},
                       id_=f"start-{key}")


@pytest.fixture
def child(settings: Settings) -> Iterator[tuple[TestClient, RunnerProcess]]:
    services = build_services(settings, runner_process=True)
    runner = services.runner
    assert isinstance(runner, RunnerProcess)
    runner._restart_delay_s = 0.2  # a test need not wait a second for the new child
    runner.start()
    try:
        with TestClient(create_app(services), raise_server_exceptions=False) as client:
            yield client, runner
    finally:
        runner.stop()


def publish(client: TestClient, *events: dict[str, Any]) -> None:
    response = client.post("/v1/events", json=list(events), headers=PUB)
    assert response.status_code == 200, response.text
    assert {r["status"] for r in response.json()["results"]} == {"accepted"}


def wait_until(check: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_read_right_after_a_write_sees_it(child: tuple[TestClient, RunnerProcess]) -> None:
    client, runner = child
    publish(client, portfolio(), proposal("X1"), approval("X1"), started("X1"))
    for n in range(1, 6):
        publish(client, cost("X1", "100.10", n))
        # No sleep, no retry: the answer came after the child applied the write.
        body = client.get("/v1/projects/X1", headers=VIEW).json()
        assert Decimal(body["actual_cost"]) == Decimal("100.10") * n
        folio = client.get("/v1/portfolios/PF-1", headers=VIEW).json()
        assert Decimal(folio["actual_cost"]) == Decimal("100.10") * n
    assert runner.pid() != os.getpid()
    items = client.get("/v1/projections", headers=VIEW).json()["items"]
    assert all(i["lag"] == 0 and i["state"] == "live" and "error" not in i for i in items)


def test_the_child_rebuilds_a_projection(child: tuple[TestClient, RunnerProcess]) -> None:
    client, _ = child
    publish(client, portfolio(), proposal("X1"), approval("X1"), started("X1"),
            cost("X1", "1250.50", 1))
    assert client.post("/v1/projections/projects/rebuild", headers=ADMIN).status_code == 202

    def rebuilt() -> bool:
        items = {i["name"]: i for i in client.get("/v1/projections", headers=VIEW).json()[
            "items"]}
        return items["projects"]["state"] == "live" and items["projects"]["lag"] == 0
    wait_until(rebuilt)
    assert client.get("/v1/projects/X1", headers=VIEW).json()["actual_cost"] == "1250.50"


def test_a_killed_child_is_replaced_and_counts_every_event_once(
        child: tuple[TestClient, RunnerProcess]) -> None:
    client, runner = child
    publish(client, portfolio(), proposal("X1"), approval("X1"), started("X1"))
    first = runner.pid()
    assert first is not None
    for n in range(1, 41):
        publish(client, cost("X1", "10.01", n))
        if n == 20:
            os.kill(first, signal.SIGKILL)
            wait_until(lambda: runner.error is not None)
            items = client.get("/v1/projections", headers=auth("audit-key")).json()["items"]
            assert all("exited" in i["error"] for i in items)
            # A viewer reads that the views are failing, not the error's text (issue 9).
            items = client.get("/v1/projections", headers=VIEW).json()["items"]
            assert all(i["error"] == GENERIC_ERROR for i in items)
    wait_until(lambda: runner.restarts == 1 and runner.pid() not in (None, first))

    def caught_up() -> bool:
        items = client.get("/v1/projections", headers=VIEW).json()["items"]
        return all(i["lag"] == 0 and "error" not in i for i in items)
    wait_until(caught_up)  # the new child's start clears the error
    assert client.get("/v1/projects/X1", headers=VIEW).json()["actual_cost"] == "400.40"
    assert client.get("/v1/portfolios/PF-1", headers=VIEW).json()["actual_cost"] == "400.40"
    audit = client.get("/v1/audit/verify", headers=auth("audit-key")).json()
    # 44 published events and the portfolio's budget commitment, each chained once
    assert audit["ok"] is True and audit["checked"] == 45


def test_a_child_that_cannot_start_fails_the_start_with_the_reason(settings: Settings) -> None:
    # The child cannot open its projection store (a directory where the file should be);
    # the API process can: the failure is the child's, at start.
    services = build_services(settings, runner_process=True)
    runner = services.runner
    assert isinstance(runner, RunnerProcess)
    broken = settings.model_copy(update={"projection_store_url": f"sqlite:///{settings.data_dir}"})
    runner._settings = broken
    with pytest.raises(RuntimeError, match="failed to start"):
        runner.start(ready_timeout=60)
    assert runner.restarts == 0
