"""``pmo relay`` against the real broker, on SQLite and PostgreSQL stores."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bench.workload import as_inbound, lifecycle_stream
from consumers.codec import EventDecoder
from consumers.deadletters import producer
from consumers.relay import Relay
from consumers.topics import EVENTS
from domain.application import PmoApplication
from pmo.bootstrap import build_application, build_ingest
from pmo.settings import Settings
from tests.conftest import drop_postgres_schema, fresh_postgres_schema
from tests.kafka_support import header, kafka_settings, read_all

pytestmark = pytest.mark.kafka


def ingest(app: PmoApplication, projects: int, offset: int = 0) -> int:
    stream = lifecycle_stream(projects)
    for e in stream:
        e["id"] = f"{e['id']}-{offset}"
        e["subject"] = e["subject"] + (f"-{offset}" if offset else "")
        e["data"] = {k: (f"{v}-{offset}" if offset and k in ("portfolio_id", "manager_id")
                         else v) for k, v in e["data"].items()}
    results = build_ingest(app).submit(as_inbound(stream))
    assert {r.status for r in results} == {"accepted"}
    return stored(app)


def stored(app: PmoApplication) -> int:
    return len(app.recorder.select_notifications(None, 10**6))


def relay_all(relay: Relay) -> None:
    while relay.step():
        pass


def fields(message: Any) -> tuple[int, int, int, str, str]:
    """The ``pmo`` header as documented:
    ``<position> <prev_position> <version> <recorded_at> <topic>``."""
    position, prev, version, recorded_at, topic = (
        header(message, "pmo") or b"").decode().split(" ")
    return int(position), int(prev), int(version), topic, recorded_at


def check_log(messages: list[Any], app: PmoApplication) -> None:
    """Each stored event exactly once, store order per key, the prev_position chain whole."""
    notifications = app.recorder.select_notifications(None, 10**6)
    positions = [fields(m)[0] for m in messages]
    assert sorted(positions) == [n.id for n in notifications]  # all, none twice
    chain = {fields(m)[0]: fields(m)[1] for m in messages}
    ordered = [n.id for n in notifications]
    assert [chain[p] for p in ordered] == [0, *ordered[:-1]]
    by_key: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
    for m in sorted(messages, key=lambda m: (m.partition, m.offset)):
        by_key[m.key].append((fields(m)[0], fields(m)[2]))
    for key, seen in by_key.items():
        assert [p for p, _ in seen] == sorted(p for p, _ in seen), key
        assert [v for _, v in seen] == list(range(1, len(seen) + 1)), key
    stored = {n.id: n for n in notifications}
    decoder = EventDecoder.for_pmo()
    for m in messages:
        n = stored[fields(m)[0]]
        assert m.value == n.state and m.key == str(n.originator_id).encode()
        assert fields(m)[3] == n.topic
        assert [k for k, _ in m.headers] == ["pmo"]  # one header: see consumers.codec
        recorded = decoder.decode(m.value, m.headers, m.key)
        assert recorded.originator_id == n.originator_id
        assert recorded.originator_version == n.originator_version
        assert recorded.recorded_at == app.mapper.to_domain_event(n).timestamp
        assert datetime.fromisoformat(fields(m)[4]) == recorded.recorded_at


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_relay_publishes_every_event_once_in_store_order(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    overrides: dict[str, Any] = {}
    if backend == "postgres":
        overrides["event_store_url"] = request.getfixturevalue("postgres_url")
    settings: Settings = kafka_settings(tmp_path, **overrides)
    app = build_application(settings)
    topic = settings.topic(EVENTS)
    kafka_producer = producer(settings)
    count = ingest(app, 40)
    relay = Relay(app.recorder, kafka_producer, topic, batch=97)
    relay_all(relay)
    assert relay.published == count

    # A new relay resumes from the stored position: only the new events go out.
    count = ingest(app, 10, offset=1)
    again = Relay(app.recorder, kafka_producer, topic, batch=97)
    relay_all(again)
    assert again.published == count - relay.published
    check_log(read_all(topic, count), app)
    kafka_producer.close()
    app.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url = fresh_postgres_schema()
    yield url
    drop_postgres_schema(url)
