"""What the dashboard page needs from ``pmo serve``: the page and its assets without a key,
``GET /v1/whoami`` and the live stream ``GET /v1/stream`` (a real server, real HTTP)."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.e2e.conftest import (
    assert_problem,
    free_port,
    pmo_command,
    portfolio,
    proposal,
    wait_until_up,
)
from tests.kafka_support import Worker, kafka_settings, wait_for

KEYS = json.dumps({"k": ["publisher", "viewer", "auditor"], "v": ["viewer"], "p": ["publisher"]})


@contextlib.contextmanager
def serving(tmp_path: Path, **env: str) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = pmo_command("serve", "--port", str(port), "--log-level", "warning",
                         env={"PMO_DATA_DIR": str(tmp_path / "data"), "PMO_API_KEYS": KEYS,
                              **env}, cwd=tmp_path)
    try:
        wait_until_up(base, server)
        yield base
    finally:
        server.terminate()
        server.communicate(timeout=30)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(tmp_path_factory.mktemp("dash"), PMO_DASHBOARD_MAX_STREAMS="2") as url:
        yield url


def frames(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """Server-sent events, parsed: each a dict of field -> value (comments skipped)."""
    frame: dict[str, str] = {}
    for line in lines:
        if not line:
            if frame:
                yield frame
            frame = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            frame[name] = value.strip()


def test_the_page_and_its_assets_need_no_key_and_load_nothing_from_elsewhere(base: str) -> None:
    page = httpx.get(f"{base}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text
    for asset in ("app.js", "app.css"):
        answer = httpx.get(f"{base}/dashboard/static/{asset}")
        assert answer.status_code == 200 and f"/dashboard/static/{asset}" in page.text
        assert "https://" not in answer.text  # no CDN, no font or script from elsewhere
    assert_problem(httpx.get(f"{base}/dashboard/static/nope.js"), 404)


def test_whoami_says_the_roles_of_the_key(base: str) -> None:
    assert httpx.get(f"{base}/v1/whoami", headers={"Authorization": "Bearer v"}).json()[
        "roles"] == ["viewer"]
    assert httpx.get(f"{base}/v1/whoami", headers={"Authorization": "Bearer k"}).json()[
        "roles"] == ["auditor", "publisher", "viewer"]
    assert_problem(httpx.get(f"{base}/v1/whoami"), 401)
    assert_problem(httpx.get(f"{base}/v1/whoami", headers={"Authorization": "Bearer x"}), 401)


def test_the_stream_needs_a_viewer(base: str) -> None:
    assert_problem(httpx.get(f"{base}/v1/stream"), 401)
    assert_problem(httpx.get(f"{base}/v1/stream", headers={"Authorization": "Bearer p"}), 403)


def test_the_stream_says_when_the_views_move_within_a_second(base: str) -> None:
    headers = {"Authorization": "Bearer k"}
    with httpx.stream("GET", f"{base}/v1/stream", headers={"Authorization": "Bearer v"},
                      timeout=10) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        events = frames(answer.iter_lines())
        first = next(events)
        assert first["event"] == "views"
        before = orjson.loads(first["data"])
        sent = time.monotonic()
        stored = httpx.post(f"{base}/v1/events", headers=headers,
                            content=orjson.dumps([portfolio("PF-S"), proposal("S-1", "PF-S")]))
        assert [r["status"] for r in stored.json()["results"]] == ["accepted", "accepted"]
        last = max(r["position"] for r in stored.json()["results"])
        # The views may move in more than one step: read until they reach the write.
        while True:
            moved = orjson.loads(next(events)["data"])
            assert moved["seq"] > before["seq"]
            if min(moved["positions"].values()) >= last:
                break
        assert time.monotonic() - sent < 1.5
        assert moved["store"] >= last
        project = httpx.get(f"{base}/v1/projects/S-1", headers=headers)
        assert project.status_code == 200  # what the event announced is there to read


def test_open_streams_are_bounded(base: str) -> None:
    headers = {"Authorization": "Bearer v"}
    readers = []  # kept: a reader dropped by the garbage collector closes its connection
    with contextlib.ExitStack() as stack:
        for _ in range(2):  # PMO_DASHBOARD_MAX_STREAMS=2
            answer = stack.enter_context(httpx.stream("GET", f"{base}/v1/stream",
                                                      headers=headers, timeout=10))
            assert answer.status_code == 200
            readers.append(answer.iter_lines())
            next(readers[-1])
        refused = httpx.get(f"{base}/v1/stream", headers=headers, timeout=10)
        body = assert_problem(refused, 429)
        assert "2 live streams" in body["detail"]
    # Closed streams free their places (the server notices the disconnect).
    deadline = time.monotonic() + 5
    while True:
        with httpx.stream("GET", f"{base}/v1/stream", headers=headers, timeout=10) as again:
            if again.status_code == 200 or time.monotonic() > deadline:
                break
        time.sleep(0.2)
    assert again.status_code == 200



def test_head_of_the_stream_answers_at_once_and_holds_nothing(base: str) -> None:
    # HEAD ran the stream with its frames dropped: the keep-alive connection stayed busy
    # (the client's next request on it waited up to 60 s) and held a stream's place.
    port = int(base.rsplit(":", 1)[1])
    heads = []
    for _ in range(3):  # more than PMO_DASHBOARD_MAX_STREAMS=2, each connection kept open
        conn = socket.create_connection(("127.0.0.1", port), timeout=5)
        conn.sendall(b"HEAD /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer v\r\n\r\n")
        assert conn.recv(4096).startswith(b"HTTP/1.1 200")
        heads.append(conn)
    try:
        # Answered, not after the stream's 60 s: a recv timeout well under that, and no
        # tighter clock a loaded machine could miss (the third HEAD above got 429 anyway).
        heads[0].settimeout(20)
        heads[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"200 OK" in heads[0].recv(4096)
        with httpx.stream("GET", f"{base}/v1/stream", headers={"Authorization": "Bearer v"},
                          timeout=10) as answer:
            assert answer.status_code == 200  # no place taken by the HEADs
    finally:
        for conn in heads:
            conn.close()


@pytest.mark.kafka
def test_in_kafka_mode_the_page_is_served_and_the_stream_follows_the_consumers(
        tmp_path: Path) -> None:
    settings = kafka_settings(tmp_path)
    port = free_port()
    serve = Worker(settings, tmp_path, "serve", "--port", str(port), "--no-access-log")
    serve.env["PMO_API_KEYS"] = KEYS
    serve.stop()
    serve.start()
    workers = [serve, Worker(settings, tmp_path, "ingest"), Worker(settings, tmp_path, "relay"),
               Worker(settings, tmp_path, "consume", "--all")]
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{base}/healthz"), "the API", workers=workers)
        assert httpx.get(f"{base}/").status_code == 200
        with httpx.stream("GET", f"{base}/v1/stream", headers={"Authorization": "Bearer v"},
                          timeout=30) as answer:
            events = frames(answer.iter_lines())
            first = orjson.loads(next(events)["data"])
            queued = httpx.post(f"{base}/v1/events", content=orjson.dumps(portfolio("PF-K")),
                                headers={"Authorization": "Bearer k",
                                         "Content-Type": "application/json"}, timeout=30)
            assert queued.status_code == 202
            # The store moves first (ingest), then the consumers' views: read until they have.
            while True:
                moved = orjson.loads(next(events)["data"])
                assert moved["seq"] > first["seq"]
                if moved["store"] >= 1 and moved["positions"].get("portfolios", 0) >= 1:
                    break
        view = httpx.get(f"{base}/v1/portfolios/PF-K", headers={"Authorization": "Bearer v"})
        assert view.status_code == 200
    finally:
        for w in workers:
            w.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False
