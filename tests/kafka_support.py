"""Helpers for tests against the real Kafka broker of scripts/kafka-local.sh.

Each test gets its own topic prefix (so its own topics and consumer groups). An
unreachable broker fails the test: it never skips.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from consumers.topics import INBOUND, delete_topics, ensure_topics
from pmo.settings import Settings
from projections.lists import ProjectQuery
from projections.service import ProjectionService
from tests.conftest import KAFKA_BOOTSTRAP


def require_broker() -> None:
    try:
        KafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP, request_timeout_ms=5000,
                         bootstrap_timeout_ms=10_000).close()
    except KafkaError as e:
        pytest.fail(f"Kafka is not reachable at {KAFKA_BOOTSTRAP} "
                    f"(run scripts/kafka-local.sh start): {e}")


# Each test's topics carry a prefix holding the second it was made, so a later run
# can tell topics a killed run left behind (older than STALE_AFTER_S) from those of a
# run going on beside it. A broker keeps every partition's files open: left behind,
# they add up until it runs out of file handles and refuses to start.
SCRATCH = re.compile(r"t([0-9]{10})x[0-9a-f]{6}\.")
LEGACY = re.compile(r"(t[0-9a-f]{12}|cu[0-9a-f]{8}|lat[0-9a-f]{8})\.")  # before the seconds
STALE_AFTER_S = 3 * 3600
MADE: set[str] = set()  # this run's prefixes, deleted when the session ends


def scratch_prefix() -> str:
    prefix = f"t{int(time.time())}x{uuid.uuid4().hex[:6]}."
    MADE.add(prefix)
    return prefix


def is_stale(topic: str, now: float) -> bool:
    if LEGACY.match(topic):
        return True
    made = SCRATCH.match(topic)
    return made is not None and now - int(made.group(1)) > STALE_AFTER_S


@functools.cache
def sweep_stale_topics() -> int:
    """Delete scratch topics that earlier (killed) runs left; once per session."""
    now = time.time()
    return delete_topics(KAFKA_BOOTSTRAP, lambda topic: is_stale(topic, now))


def delete_made_topics() -> int:
    """Delete the topics of every prefix this session made."""
    if not MADE:
        return 0
    prefixes = tuple(MADE)
    MADE.clear()
    return delete_topics(KAFKA_BOOTSTRAP, lambda topic: topic.startswith(prefixes))


def kafka_settings(tmp_path: Path, inbound_partitions: int | None = None,
                   **overrides: Any) -> Settings:
    """Settings on a fresh topic prefix and a SQLite store in ``tmp_path``; topics created.

    ``inbound_partitions=1`` keeps the publishing order across subjects (a bulk load
    of events that depend on other aggregates needs it; see docs/kafka.md)."""
    require_broker()
    sweep_stale_topics()
    options: dict[str, Any] = {
        "kafka_bootstrap": KAFKA_BOOTSTRAP, "topic_prefix": scratch_prefix(),
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


RECORDING_TIMES = {"updated_at", "recorded_at"}  # the store's clock: two stores differ


def without_recording_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_recording_times(v) for k, v in value.items()
                if k not in RECORDING_TIMES}
    if isinstance(value, list):
        return [without_recording_times(v) for v in value]
    return value


def views(service: ProjectionService) -> dict[str, Any]:
    """Every portfolio, project and manager view, recording times left out.

    A manager's ``projects`` are listed in assignment order, which follows the order
    messages of different subjects (so different partitions) happened to be ingested;
    compared as sets."""
    managers = orjson.loads(service.manager_list(None, 1000))
    for manager in managers["items"]:
        manager["projects"] = sorted(manager["projects"])
    return without_recording_times({
        "portfolios": orjson.loads(service.portfolio_list(None, 100)),
        "projects": orjson.loads(service.project_list(ProjectQuery(limit=100_000))),
        "managers": managers})


class Worker:
    """One ``pmo`` worker process with the test's ``PMO_*`` environment; output in a file."""

    def __init__(self, settings: Settings, log_dir: Path, *args: str) -> None:
        self.args = args
        self.env = {**os.environ, "PMO_LOG_LEVEL": "INFO", **env_of(settings)}
        self.log_path = log_dir / f"{'-'.join(args)}-{uuid.uuid4().hex[:6]}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pmo.cli", *self.args], env=self.env,
                stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        """kill -9: no clean shutdown, no last commit."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def env_of(settings: Settings) -> dict[str, str]:
    env = {"PMO_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
           "PMO_TOPIC_PREFIX": settings.topic_prefix,
           "PMO_KAFKA_PARTITIONS": str(settings.kafka_partitions),
           "PMO_DATA_DIR": str(settings.data_dir),
           "PMO_INGEST_BATCH_SIZE": str(settings.ingest_batch_size),
           "PMO_PARK_SECONDS": str(settings.park_seconds)}
    if settings.event_store_url:
        env["PMO_EVENT_STORE_URL"] = settings.event_store_url
    if settings.projection_store_url:
        env["PMO_PROJECTION_STORE_URL"] = settings.projection_store_url
    return env


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 120.0,
             workers: Iterable[Worker] = ()) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        for w in workers:
            if not w.alive():
                raise AssertionError(f"{w.args} died:\n{w.log()[-3000:]}")
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {w.args}\n{w.log()[-1500:]}" for w in workers)
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.05)


REPO = Path(__file__).resolve().parent.parent
