"""A running app over a small demo portfolio (real SQLite stores), for contract tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from pmo.bootstrap import build_services
from pmo.demo import load
from pmo.demo_data import generate
from pmo.settings import Settings
from tests.e2e.conftest import KEYS

ALL = {"Authorization": "Bearer all-key"}


@contextmanager
def demo_client(data_dir: Path, projects: int = 12,
                store_url: str | None = None) -> Iterator[TestClient]:
    """``store_url``: both stores there (a PostgreSQL schema); default SQLite files."""
    settings = Settings(data_dir=data_dir, api_keys=KEYS, poll_interval_ms=5,
                        event_store_url=store_url, projection_store_url=store_url,
                        _env_file=None)  # type: ignore[call-arg]
    load(settings, generate(projects=projects))
    services = build_services(settings)
    assert services.runner is not None
    services.runner.start()
    stored = services.app.recorder.max_notification_id() or 0
    assert services.runner.wait_for(stored, 60), "the views did not catch up"
    try:
        with TestClient(create_app(services), raise_server_exceptions=False) as client:
            yield client
    finally:
        services.close()
