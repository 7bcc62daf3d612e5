"""Reads under load: ``wrk`` at 32 connections on ``GET /v1/portfolios/{id}`` of ``pmo serve``.

Baseline, same run: a bare uvicorn app (same server settings) answering the very
same bytes, so the ratio is what the service costs over the floor of the HTTP
stack. Targets: >= 0.5x the bare rate, p99 <= 10 ms. The store holds the demo.

Two ``pmo serve`` are measured, interleaved with the baseline: the bench's tuned
flags (``--log-level warning --no-access-log``) and the defaults a user runs (plain
``pmo serve``), each on its own copy of the store. The targets apply to the defaults.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.server import AUTH, KEY, free_port, pmo_serve, running
from pmo import demo
from pmo.settings import Settings

CONNECTIONS = 32
SECONDS = 8
RUNS = 2
PORTFOLIO = "PF-FINANCE"
BARE_APP = '''
import pathlib
BODY = pathlib.Path({path!r}).read_bytes()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]

async def app(scope, receive, send):
    assert scope["type"] == "http"
    await send({{"type": "http.response.start", "status": 200, "headers": HEADERS}})
    await send({{"type": "http.response.body", "body": BODY}})
'''


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if shutil.which("apt-get"):  # the Debian package, as the issue says
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False,
                       stdout=subprocess.DEVNULL)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and could not be: apt-get install -y wrk")
    return found


def wrk(url: str, headers: dict[str, str]) -> tuple[float, float]:
    """Requests/s and p99 latency in ms."""
    args = [ensure_wrk(), "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", url]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors against {url}:\n{out}")
    return rate, p99


def medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r for r, _ in runs), statistics.median(p for _, p in runs)


def wait_ready(base: str, url_path: str) -> None:
    """Until the runner has caught up with the demo's events (it starts behind)."""
    deadline = time.monotonic() + 60
    while True:
        answer = httpx.get(base + url_path, headers=AUTH)
        lag = httpx.get(base + "/v1/projections", headers=AUTH)
        if answer.status_code == 200 and lag.status_code == 200 and all(
                p["lag"] == 0 for p in lag.json()["items"]):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"views not ready: {answer.text} {lag.text}")
        time.sleep(0.2)


def main() -> int:
    ensure_wrk()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        demo.load(Settings(data_dir=data / "data"), demo.generate(7))
        shutil.copytree(data / "data", data / "defaults")
        url_path = f"/v1/portfolios/{PORTFOLIO}"
        with pmo_serve(data / "data", free_port()) as base, \
                pmo_serve(data / "defaults", free_port(), flags=()) as default_base:
            for server in (base, default_base):
                wait_ready(server, url_path)
            body = httpx.get(base + url_path, headers=AUTH).content
            (data / "body.json").write_bytes(body)
            (data / "bare_app.py").write_text(BARE_APP.format(path=str(data / "body.json")))
            bare_port = free_port()
            bare = [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(bare_port),
                    "--log-level", "warning", "--no-access-log", "--app-dir", str(data)]
            with running(bare, bare_port) as bare_base:
                tuned_runs, default_runs, bare_runs = [], [], []
                key = {"Authorization": f"Bearer {KEY}"}
                for _ in range(RUNS):  # interleaved, so drift hits all alike
                    tuned_runs.append(wrk(base + url_path, key))
                    default_runs.append(wrk(default_base + url_path, key))
                    bare_runs.append(wrk(bare_base + url_path, {}))
    rate, p99 = medians(default_runs)
    tuned_rate, tuned_p99 = medians(tuned_runs)
    bare_rate, bare_p99 = medians(bare_runs)
    ratio = rate / bare_rate
    print(f"GET {url_path}: {len(body)} bytes, wrk {CONNECTIONS} connections, {SECONDS} s x "
          f"{RUNS} runs (medians)")
    print(f"pmo serve (defaults): {rate:>9,.0f} req/s   p99 {p99:6.2f} ms   "
          f"{ratio:.2f}x bare")
    print(f"pmo serve (tuned):    {tuned_rate:>9,.0f} req/s   p99 {tuned_p99:6.2f} ms   "
          f"{tuned_rate / bare_rate:.2f}x bare  (--log-level warning --no-access-log)")
    print(f"bare uvicorn:         {bare_rate:>9,.0f} req/s   p99 {bare_p99:6.2f} ms  (baseline)")
    print("targets, on the defaults: >= 0.5x bare, p99 <= 10 ms")
    ok = ratio >= 0.5 and p99 <= 10
    print(f"targets: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
