"""Helpers for tests against the real Kafka broker of scripts/kafka-local.sh.

Each test gets its own topic prefix (so its own topics and consumer groups). An
unreachable broker fails the test: it never skips.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from consumers.topics import INBOUND, ensure_topics
from pmo.settings import Settings
from tests.conftest import KAFKA_BOOTSTRAP


def require_broker() -> None:
    try:
        KafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP, request_timeout_ms=5000,
                         bootstrap_timeout_ms=10_000).close()
    except KafkaError as e:
        pytest.fail(f"Kafka is not reachable at {KAFKA_BOOTSTRAP} "
                    f"(run scripts/kafka-local.sh start): {e}")


def kafka_settings(tmp_path: Path, inbound_partitions: int | None = None,
                   **overrides: Any) -> Settings:
    """Settings on a fresh topic prefix and a SQLite store in ``tmp_path``; topics created.

    ``inbound_partitions=1`` keeps the publishing order across subjects (a bulk load
    of events that depend on other aggregates needs it; see docs/kafka.md)."""
    require_broker()
    options: dict[str, Any] = {
        "kafka_bootstrap": KAFKA_BOOTSTRAP, "topic_prefix": f"t{uuid.uuid4().hex[:12]}.",
        "data_dir": tmp_path, "event_store_url": f"sqlite:///{tmp_path / 'events.sqlite'}",
        "projection_store_url": f"sqlite:///{tmp_path / 'projections.sqlite'}",
        "kafka_partitions": 3, **overrides}
    settings = Settings(**options)
    if inbound_partitions is not None:
        ensure_topics(settings.model_copy(update={"kafka_partitions": inbound_partitions}),
                      [INBOUND])
    ensure_topics(settings)
    return settings


def produce(topic: str, messages: Iterable[tuple[bytes | None, bytes, list[tuple[str, bytes]]]],
            ) -> int:
    producer = KafkaProducer(bootstrap_servers=KAFKA_BOOTSTRAP, linger_ms=5)
    futures = [producer.send(topic, key=k, value=v, headers=h) for k, v, h in messages]
    producer.flush()
    for f in futures:
        f.get(timeout=30)
    producer.close()
    return len(futures)


def read_all(topic: str, expected: int, timeout_s: float = 30.0,
             settle_s: float = 0.5) -> list[Any]:
    """Every message of ``topic`` from the start: ``expected`` of them, then ``settle_s``
    more seconds to catch any extra (a duplicate must show up in a count)."""
    consumer = KafkaConsumer(bootstrap_servers=KAFKA_BOOTSTRAP, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    out: list[Any] = []
    deadline = time.monotonic() + timeout_s
    settle_until: float | None = None
    while time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=200).values():
            out.extend(batch)
        if len(out) >= expected:
            settle_until = settle_until or time.monotonic() + settle_s
            if time.monotonic() >= settle_until:
                break
    consumer.close()
    return out


def until(step: Callable[[], object], done: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not done within {timeout_s} s")
        step()


def header(message: Any, name: str) -> bytes | None:
    return dict(message.headers).get(name)
