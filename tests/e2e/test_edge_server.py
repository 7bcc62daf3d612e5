"""Input limits against a real ``pmo serve`` (uvicorn): the connection after a 413, and
eight publishers writing to one project at once."""

from __future__ import annotations

import contextlib
import socket
import threading
from decimal import Decimal
from pathlib import Path

import httpx
import orjson

from tests.e2e.conftest import (
    approval,
    cloud_event,
    cost,
    portfolio,
    proposal,
    read_until_closed,
)
from tests.e2e.test_cli import KEYS, serving

LIMIT = 1024  # the smallest PMO_MAX_BODY_BYTES


def test_a_413_on_a_chunked_body_closes_the_connection(tmp_path: Path) -> None:
    with serving(tmp_path, PMO_API_KEYS=KEYS, PMO_MAX_BODY_BYTES=str(LIMIT)) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Authorization: Bearer k\r\nContent-Type: application/json\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            chunk = b"[" + b" " * (2 * LIMIT) + b"]"
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            # What follows the refused chunk must not be read as a request of its own.
            smuggled = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            with contextlib.suppress(OSError):  # already closed by the server: as wanted
                sock.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(smuggled), smuggled) + smuggled)
            data, closed = read_until_closed(sock)
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 413"), data[:200]
    assert b"connection: close" in head
    assert data.count(b"HTTP/1.1 ") == 1, data  # no answer to a second request
    assert closed


def test_eight_concurrent_publishers_on_one_project_lose_no_update(tmp_path: Path) -> None:
    """Threads posting cost events to one project over HTTP: every accepted cost counts,
    the project's version is its events' count, and the total is exact."""
    threads, per_thread = 8, 25
    with serving(tmp_path, PMO_API_KEYS=KEYS) as (base, _):
        headers = {"Authorization": "Bearer k"}
        for event in (portfolio(envelope="100000000.00"), proposal("P-1"), approval("P-1"),
                      cloud_event("pmo.project.started", "P-1", {"started_on": "2026-04-01"})):
            assert httpx.post(f"{base}/v1/events", json=event, headers=headers,
                              timeout=30).status_code == 201
        accepted: list[Decimal] = []
        errors: list[str] = []
        lock = threading.Lock()

        def publish(worker: int) -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
                for n in range(per_thread):
                    amount = f"{worker + 1}.{n:02d}"
                    event = cost("P-1", amount, worker * 1000 + n)
                    response = client.post("/v1/events", json=event)
                    with lock:
                        if response.status_code == 201:
                            accepted.append(Decimal(amount))
                        else:
                            errors.append(f"{response.status_code} {response.text[:200]}")

        workers = [threading.Thread(target=publish, args=(w,)) for w in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert errors == []
        assert len(accepted) == threads * per_thread
        history = httpx.get(f"{base}/v1/projects/P-1/history?limit=1000", headers=headers,
                            timeout=30).json()["items"]
        costs = [Decimal(e["data"]["amount"]) for e in history
                 if e["type"] == "pmo.project.cost_recorded"]
        assert sorted(costs) == sorted(accepted)
        assert [e["version"] for e in history] == list(range(1, len(history) + 1))
        assert history[-1]["version"] == 3 + len(accepted)  # proposed, approved, started
        view = _settled_view(base, headers, 3 + len(accepted))
        assert Decimal(view["actual_cost"]) == sum(accepted)


def _settled_view(base: str, headers: dict[str, str], version: int) -> dict[str, object]:
    deadline = 60.0
    waited = 0.0
    while True:
        view: dict[str, object] = orjson.loads(httpx.get(
            f"{base}/v1/projects/P-1", headers=headers, timeout=30).content)
        if view["version"] == version or waited > deadline:
            return view
        threading.Event().wait(0.1)
        waited += 0.1
