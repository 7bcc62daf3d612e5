"""An event the store cannot take is refused alone (issue 9: "anything"), on real stores.

Every limit is checked before the store, so no known input reaches this path: the
application here is the real one on a real store, made to fail on one subject as an
unforeseen input would (a fake subclassing the port, no mock).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from eventsourcing.persistence import OperationalError

from domain.application import Outcome, PmoApplication
from domain.commands import Command
from domain.values import Envelope
from ingest.service import IngestService, Refusal
from pmo.settings import Settings
from projections.db import Db
from projections.rejections import RejectionLog
from storage.transcoder import FastJSONTranscoder
from storage.urls import StoreUrl
from tests.integration.test_ingest import ce, inbound, opening


class FailsOn(PmoApplication):
    """The real application, failing on one subject with ``error``."""

    def __init__(self, url: str, subject: str, error: Exception) -> None:
        env = Settings(event_store_url=url).event_store.event_store_env()
        super().__init__(env=env, transcoder=FastJSONTranscoder())
        self.subject, self.error = subject, error

    def record(self, items: Sequence[tuple[Envelope, Command]]) -> list[Outcome]:
        if any(command.subject == self.subject for _, command in items):
            raise self.error
        return super().record(items)


class Log:
    def __init__(self) -> None:
        self.refusals: list[Refusal] = []

    def record_refusals(self, refusals: Sequence[Refusal]) -> None:
        self.refusals += refusals


def poisoned_batch() -> list[dict[str, object]]:
    return [*opening(), ce("pmo.manager.registered", "POISON", {"name": "P", "capacity": 1}),
            ce("pmo.manager.registered", "M2", {"name": "Q", "capacity": 1})]


def test_an_event_the_store_cannot_take_is_invalid_alone(store_url: str,
                                                          tmp_path: Path) -> None:
    app = FailsOn(store_url, "POISON", OverflowError("Python int too large"))
    rejections = RejectionLog(Db(StoreUrl.parse(f"sqlite:///{tmp_path / 'views.sqlite'}")))
    rejections.create_tables()
    results = IngestService(app, rejections).submit(inbound(*poisoned_batch()))
    assert [r.status for r in results] == ["accepted", "accepted", "invalid", "accepted"]
    assert "OverflowError" in (results[2].reason or "")
    logged, _ = rejections.page(None, 0, 10)
    assert [(r["kind"], r["subject"]) for r in logged] == [("dlq", "POISON")]
    assert len(app.recorder.select_notifications(None, 100)) == 3
    app.close()


def test_a_store_that_is_down_fails_the_batch_loudly(store_url: str) -> None:
    """Not the message's fault: HTTP answers 5xx, ``pmo ingest`` re-reads the batch."""
    app = FailsOn(store_url, "POISON", OperationalError("connection refused"))
    log = Log()
    with pytest.raises(OperationalError):
        IngestService(app, log).submit(inbound(*poisoned_batch()))
    assert log.refusals == []
    app.close()
