"""Reads under load: ``wrk`` at 32 connections on ``GET /v1/portfolios/{id}`` of ``pmo serve``.

Baseline, same run: a bare uvicorn app (same server settings) answering the very
same bytes, so the ratio is what the service costs over the floor of the HTTP
stack. Targets: >= 0.5x the bare rate, p99 <= 10 ms. The store holds the demo.
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


def main() -> int:
    ensure_wrk()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        demo.load(Settings(data_dir=data / "data"), demo.generate(7))
        url_path = f"/v1/portfolios/{PORTFOLIO}"
        port = free_port()
        with pmo_serve(data / "data", port) as base:
            deadline = time.monotonic() + 60
            while True:  # the runner catches up with the demo's events after start
                answer = httpx.get(base + url_path, headers=AUTH)
                lag = httpx.get(base + "/v1/projections", headers=AUTH)
                if answer.status_code == 200 and lag.status_code == 200 and all(
                        p["lag"] == 0 for p in lag.json()["items"]):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"views not ready: {answer.text} {lag.text}")
                time.sleep(0.2)
            body = httpx.get(base + url_path, headers=AUTH).content
            (data / "body.json").write_bytes(body)
            (data / "bare_app.py").write_text(BARE_APP.format(path=str(data / "body.json")))
            bare_port = free_port()
            bare = [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(bare_port),
                    "--log-level", "warning", "--no-access-log", "--app-dir", str(data)]
            with running(bare, bare_port) as bare_base:
                pmo_runs, bare_runs = [], []
                for _ in range(RUNS):  # interleaved, so drift hits both alike
                    pmo_runs.append(wrk(base + url_path, {"Authorization": f"Bearer {KEY}"}))
                    bare_runs.append(wrk(bare_base + url_path, {}))
    rate = statistics.median(r for r, _ in pmo_runs)
    p99 = statistics.median(p for _, p in pmo_runs)
    bare_rate = statistics.median(r for r, _ in bare_runs)
    bare_p99 = statistics.median(p for _, p in bare_runs)
    ratio = rate / bare_rate
    print(f"GET {url_path}: {len(body)} bytes, wrk {CONNECTIONS} connections, {SECONDS} s x "
          f"{RUNS} runs (medians)")
    print(f"pmo serve:          {rate:>9,.0f} req/s   p99 {p99:6.2f} ms")
    print(f"bare uvicorn:       {bare_rate:>9,.0f} req/s   p99 {bare_p99:6.2f} ms  (baseline)")
    print(f"ratio:              {ratio:>9.2f}   (target >= 0.5; p99 target <= 10 ms)")
    ok = ratio >= 0.5 and p99 <= 10
    print(f"targets: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
