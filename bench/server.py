"""Running ``pmo serve`` (or any ASGI app under uvicorn) as a subprocess for benchmarks."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

KEY = "bench-key"
KEYS = json.dumps({KEY: ["publisher", "viewer", "auditor", "admin"]})
AUTH = {"Authorization": f"Bearer {KEY}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def running(args: Sequence[str], port: int, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> Iterator[str]:
    """Start ``args``, wait until ``/healthz`` (or ``/``) answers, yield the base URL, stop."""
    process = subprocess.Popen(list(args), env={**os.environ, **(env or {})}, cwd=cwd,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{args[:4]} exited: {process.communicate()[1][-2000:]}")
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{args[:4]} did not answer on {base}") from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


TUNED = ("--log-level", "warning", "--no-access-log")


def pmo_serve(data_dir: Path, port: int, flags: Sequence[str] = TUNED,
              ) -> contextlib.AbstractContextManager[str]:
    """``pmo serve`` on ``data_dir``; ``flags=()`` is the configuration a user gets."""
    env = {"PMO_DATA_DIR": str(data_dir), "PMO_API_KEYS": KEYS}
    return running([sys.executable, "-m", "pmo.cli", "serve", "--port", str(port), *flags],
                   port, env, cwd=data_dir)
