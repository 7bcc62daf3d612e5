"""``schemathesis run --checks all`` against a live ``pmo serve`` on the demo portfolio,
SQLite and PostgreSQL: zero failures (CONTRACT section 12).

All checks, every phase (examples, coverage, fuzzing, stateful): besides what the answers
say (tests/e2e/test_openapi_conformance.py), whether every request the document allows is
accepted, every one it forbids refused, and undeclared methods answered 405. The repo's
``schemathesis.toml`` says which schema-valid answers depend on state or the clock.
Examples are bounded and the seed fixed, so a run takes seconds and is the same each time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import drop_postgres_schema, fresh_postgres_schema
from tests.e2e.conftest import free_port, pmo_command, wait_until_up

ROOT = Path(__file__).resolve().parents[2]
KEY = "schemathesis-key"
MAX_EXAMPLES = "12"
SEED = "1"
# The live stream stays open up to 60 s a request: tests/e2e/test_dashboard_api.py covers it.
EXCLUDED = "/v1/stream"


def command(base: str) -> list[str]:
    """The run the report quotes (docs/integration.md shows the same)."""
    return [sys.executable, "-m", "schemathesis.cli", "run", f"{base}/openapi.json",
            "--checks", "all", "-H", f"Authorization: Bearer {KEY}",
            "--exclude-path", EXCLUDED, "--max-examples", MAX_EXAMPLES, "--seed", SEED,
            "--generation-database", "none",
            "--no-color"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The base URL of ``pmo serve`` over a freshly loaded demo portfolio."""
    url = fresh_postgres_schema() if request.param == "postgres" else None
    env = {"PMO_DATA_DIR": str(tmp_path), "PMO_LOG_LEVEL": "WARNING",
           "PMO_API_KEYS": json.dumps({KEY: ["publisher", "viewer", "auditor", "admin"]})}
    if url is not None:
        env |= {"PMO_EVENT_STORE_URL": url, "PMO_PROJECTION_STORE_URL": url}
    try:
        demo = pmo_command("demo", "--projects", "8", env=env)
        _, err = demo.communicate(timeout=120)
        assert demo.returncode == 0, err
        port = free_port()
        server = pmo_command("serve", "--host", "127.0.0.1", "--port", str(port), env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(base, server)
            yield base
        finally:
            server.terminate()
            server.communicate(timeout=30)
    finally:
        if url is not None:
            drop_postgres_schema(url)


def test_schemathesis_all_checks_find_nothing(live: str) -> None:
    run = subprocess.run(command(live), check=False, cwd=ROOT, capture_output=True,
                         text=True, timeout=300, env={**os.environ, "NO_COLOR": "1"})
    report = run.stdout + run.stderr
    counts = re.search(r"(\d+) generated, (\d+) passed", report)
    tested = re.search(r"Tested: (\d+)", report)
    assert counts is not None and tested is not None, report[-8000:]
    # Every operation reached: a run that tested little would pass for the wrong reason.
    assert int(counts.group(1)) >= 500 and int(tested.group(1)) >= 25, report[-3000:]
    assert run.returncode == 0 and counts.group(1) == counts.group(2), report[-8000:]
    assert "failures" not in report.splitlines()[-1], report[-8000:]
    print(f"schemathesis --checks all: {counts.group(0)}; {report.splitlines()[-1]}")
