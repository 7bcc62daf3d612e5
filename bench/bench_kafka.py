"""Kafka mode throughput, on the real broker: the relay and the projection consumers.

- relay: stored events -> pmo.events (idempotent producer, acks=all, position
  advanced after the acks); floor: a bare kafka-python producer sending the same
  (key, value, headers) with the same settings.
- projection consumer (``pmo consume``'s loop: decode, ``projection.process``,
  offsets in the view's transaction); floor: a bare kafka-python consumer in a
  consumer group reading the same topic and touching each value.
Each figure is the median of ``RUNS``; targets: consumer >= 50,000 events/s and
>= 0.4x the floor. Latency is in ``bench_kafka_latency``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer

from bench.workload import as_inbound, lifecycle_stream
from consumers.codec import EventDecoder, encode
from consumers.deadletters import SEND_TIMEOUT_S, producer
from consumers.projector import ProjectionConsumer
from consumers.relay import Relay
from consumers.topics import EVENTS, client_options, ensure_topics, subscribe
from pmo.bootstrap import build_application, build_ingest
from pmo.settings import Settings
from projections.service import build_projections

PROJECTS = int(os.environ.get("PMO_BENCH_PROJECTS", "8000"))  # ~ 100,000 stored events
RUNS = 3
PROJECTIONS = ("projects", "audit")
TARGET_RATE = 50_000
TARGET_RATIO = 0.4


def settings_in(tmp: Path, prefix: str) -> Settings:
    return Settings(kafka_bootstrap=os.environ.get("PMO_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
                    topic_prefix=prefix, data_dir=tmp, kafka_partitions=6,
                    projection_store_url=f"sqlite:///{tmp / f'{prefix}views.sqlite'}")


def relay_once(app: Any, settings: Settings) -> tuple[float, float]:
    """(relay events/s, bare producer events/s) into fresh topics."""
    ensure_topics(settings)
    notifications = app.recorder.select_notifications(None, 10**7)
    kafka_producer = producer(settings, batch_size=256 * 1024, linger_ms=10)
    relay = Relay(app.recorder, kafka_producer, settings.topic(EVENTS))
    started = time.perf_counter()
    while relay.step():
        pass
    rate = relay.published / (time.perf_counter() - started)
    floor_topic = settings.topic("floor")
    ensure_topics(settings, ["floor"])
    started = time.perf_counter()
    prev = 0
    futures = []
    for n in notifications:
        key, value, headers = encode(n, prev)
        futures.append(kafka_producer.send(floor_topic, key=key, value=value, headers=headers))
        prev = n.id
    kafka_producer.flush(timeout=SEND_TIMEOUT_S)
    for f in futures:
        f.get(timeout=SEND_TIMEOUT_S)
    floor = len(notifications) / (time.perf_counter() - started)
    kafka_producer.close()
    return rate, floor


def consume_once(settings: Settings, name: str, total: int) -> float:
    service = build_projections(settings)
    consumer = ProjectionConsumer(settings, service.projections[name], EventDecoder.for_pmo())
    started = time.perf_counter()
    while consumer.applied < total:
        consumer.step()
    rate = total / (time.perf_counter() - started)
    consumer.close()
    service.close()
    return rate


def floor_once(settings: Settings, total: int) -> float:
    consumer = KafkaConsumer(**client_options(settings), group_id=f"floor-{uuid.uuid4().hex}",
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             max_poll_records=5000, fetch_max_bytes=64 * 1024 * 1024,
                             max_partition_fetch_bytes=8 * 1024 * 1024)
    subscribe(consumer, [settings.topic(EVENTS)])
    seen = size = 0
    started = time.perf_counter()
    while seen < total:
        for batch in consumer.poll(timeout_ms=100).values():
            seen += len(batch)
            size += sum(len(m.value) for m in batch)
    rate = total / (time.perf_counter() - started)
    consumer.close()
    return rate


def main() -> int:
    ok = True
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        base = settings_in(tmp, "bench.")
        app = build_application(base)
        inbound = as_inbound(lifecycle_stream(PROJECTS))
        ingest = build_ingest(app)
        for start in range(0, len(inbound), 1000):
            ingest.submit(inbound[start:start + 1000])
        total = len(app.recorder.select_notifications(None, 10**7))
        print(f"== Kafka: {total:,} stored events, 6 partitions, {RUNS} runs each ==")
        relays, producer_floors, runs = [], [], []
        for _ in range(RUNS):
            run = settings_in(tmp, f"b{uuid.uuid4().hex[:8]}.")
            rate, floor = relay_once(app, run)
            relays.append(rate)
            producer_floors.append(floor)
            runs.append(run)
            print(f"  relay {rate:,.0f} events/s (bare producer {floor:,.0f}/s)", flush=True)
        relay_rate, producer_floor = statistics.median(relays), statistics.median(producer_floors)
        print(f"relay: median {relay_rate:,.0f} events/s; bare producer floor "
              f"{producer_floor:,.0f} events/s; ratio {relay_rate / producer_floor:.2f}x")

        floors = [floor_once(run, total) for run in runs]
        floor = statistics.median(floors)
        for name in PROJECTIONS:
            rates = []
            for run in runs:
                rates.append(consume_once(run, name, total))
                print(f"  consume {name}: {rates[-1]:,.0f} events/s", flush=True)
            rate = statistics.median(rates)
            meets = rate >= TARGET_RATE and rate / floor >= TARGET_RATIO
            ok = ok and meets
            print(f"consume[{name}]: median {rate:,.0f} events/s; bare consumer floor "
                  f"{floor:,.0f} events/s; ratio {rate / floor:.2f}x; target >= "
                  f"{TARGET_RATE:,}/s and >= {TARGET_RATIO}x: {'meets' if meets else 'MISSES'}")
        app.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
