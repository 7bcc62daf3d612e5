"""Inbound-to-visible latency in Kafka mode at a steady 2,000 events/s, real processes.

``pmo ingest``, ``pmo relay`` and ``pmo consume audit`` run as their own processes,
as deployed. The bench publishes CloudEvents to pmo.inbound at RATE and watches the
audit view (the one that shows every event) for each event id; latency = first
seen in the view - sent. Baseline of the same run: a bare producer -> consumer
round trip through the broker at the same rate (the transport alone). Printed:
p50 and p99 of both and their ratio; target p99 <= 250 ms.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer

from bench.workload import lifecycle_stream, topic_prefix
from consumers.deadletters import producer
from consumers.topics import INBOUND, client_options, delete_topics, ensure_topics, subscribe
from pmo.settings import Settings

RATE = 2000
SECONDS = 10
TARGET_P99_MS = 250.0


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]


def paced(send: Any, items: list[Any], sent_at: dict[str, float]) -> None:
    """Send ``items`` at RATE per second, in 10 ms ticks; remember when each went."""
    per_tick = RATE // 100
    started = time.monotonic()
    for tick, start in enumerate(range(0, len(items), per_tick)):
        for key, item in items[start:start + per_tick]:
            sent_at[key] = time.monotonic()
            send(item)
        delay = started + (tick + 1) / 100 - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def pipeline_latency(tmp: Path, settings: Settings) -> list[float]:
    env = {**os.environ, "PMO_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
           "PMO_TOPIC_PREFIX": settings.topic_prefix, "PMO_DATA_DIR": str(tmp)}
    workers = [subprocess.Popen([sys.executable, "-m", "pmo.cli", *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for args in (["ingest"], ["relay"], ["consume", "audit"])]
    events = lifecycle_stream(RATE * SECONDS // 11)
    base = 1 + max(1, len(events) // 11 // 50)
    views = tmp / "projections.sqlite"
    seen: dict[str, float] = {}
    stop = threading.Event()

    def watch() -> None:
        last = 0
        while not stop.is_set():
            try:
                with sqlite3.connect(views, timeout=30) as db:
                    rows = db.execute("SELECT a.position, a.event_id FROM pv_audit a "
                                      "JOIN pv_audit_chain c ON c.position = a.position "
                                      "WHERE a.position > ?", (last,)).fetchall()
            except sqlite3.OperationalError:
                rows = []  # the view's tables are not there yet
            now = time.monotonic()
            for position, event_id in rows:
                seen.setdefault(event_id, now)
                last = max(last, position)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    kafka_producer = producer(settings, linger_ms=0)
    topic = settings.topic(INBOUND)

    def send(e: dict[str, Any]) -> None:
        kafka_producer.send(topic, key=e["subject"].encode(), value=orjson.dumps(e),
                            headers=[("content-type", b"application/cloudevents+json")])

    sent_at: dict[str, float] = {}
    try:
        for e in events[:base]:
            send(e)
        kafka_producer.flush()
        deadline = time.monotonic() + 60
        while len(seen) < base and time.monotonic() < deadline:
            time.sleep(0.05)  # the pool is in place and every worker has joined its group
        paced(send, [(e["id"], e) for e in events[base:]], sent_at)
        kafka_producer.flush()
        deadline = time.monotonic() + 60
        while not all(k in seen for k in sent_at) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        kafka_producer.close()
        for w in workers:
            w.terminate()
            w.wait(30)
    missing = [k for k in sent_at if k not in seen]
    if missing:
        raise RuntimeError(f"{len(missing)} events never became visible")
    return [(seen[k] - t) * 1000 for k, t in sent_at.items()]


def transport_latency(settings: Settings) -> list[float]:
    topic = settings.topic("latency.floor")
    ensure_topics(settings, ["latency.floor"])
    consumer = KafkaConsumer(**client_options(settings), group_id=f"floor-{uuid.uuid4().hex}",
                             auto_offset_reset="earliest")
    subscribe(consumer, [topic])
    received: dict[str, float] = {}
    stop = threading.Event()

    def receive() -> None:
        while not stop.is_set():
            for batch in consumer.poll(timeout_ms=100).values():
                now = time.monotonic()
                for m in batch:
                    received.setdefault(m.key.decode(), now)

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    time.sleep(2)  # joined
    kafka_producer = producer(settings, linger_ms=0)
    sent_at: dict[str, float] = {}
    payload = b"x" * 600
    items = [(str(i), str(i)) for i in range(RATE * SECONDS)]
    paced(lambda k: kafka_producer.send(topic, key=k.encode(), value=payload), items, sent_at)
    kafka_producer.flush()
    deadline = time.monotonic() + 30
    while len(received) < len(sent_at) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join()
    consumer.close()
    kafka_producer.close()
    return [(received[k] - t) * 1000 for k, t in sent_at.items() if k in received]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp_dir:
        settings = Settings(
            kafka_bootstrap=os.environ.get("PMO_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            topic_prefix=topic_prefix(), data_dir=Path(tmp_dir))
        ensure_topics(settings)
        try:
            ours = pipeline_latency(Path(tmp_dir), settings)
            floor = transport_latency(settings)
        finally:
            delete_topics(settings.kafka_bootstrap or "",
                          lambda topic: topic.startswith(settings.topic_prefix))
    p50, p99 = percentile(ours, 0.5), percentile(ours, 0.99)
    f50, f99 = percentile(floor, 0.5), percentile(floor, 0.99)
    print(f"== inbound-to-visible latency at {RATE:,} events/s for {SECONDS} s "
          f"({len(ours):,} events; ingest, relay, consume audit as processes) ==")
    print(f"latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms; bare produce->consume p50 "
          f"{f50:.1f} ms, p99 {f99:.1f} ms; ratio p99 {p99 / f99:.1f}x; "
          f"target p99 <= {TARGET_P99_MS:.0f} ms: "
          f"{'meets' if p99 <= TARGET_P99_MS else 'MISSES'}")
    return 0 if p99 <= TARGET_P99_MS else 1


if __name__ == "__main__":
    sys.exit(main())
