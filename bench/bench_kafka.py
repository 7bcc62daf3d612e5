"""Kafka mode throughput, on the real broker: the relay and the projection consumers.

- relay: stored events -> pmo.events (idempotent producer, acks=all, position
  advanced after the acks); floor: a bare kafka-python producer sending the same
  (key, value, headers) with the same settings.
- projection consumer, one process (``pmo consume``'s loop: decode,
  ``projection.process``, offsets in the view's transaction), from an empty
  projection store to all ``total`` events applied.
- projection consumer, scaled out: ``PMO_BENCH_CONSUMERS`` processes (default
  ``os.cpu_count()``) of one projection in one consumer group, started with
  ``spawn`` (no Kafka client crosses a fork), on ONE SQLite projection store. Each
  process runs the same ``ProjectionConsumer`` as ``pmo consume NAME``. The group
  join (the processes join one after the other) is timed on its own, from the
  moment all are started and connected: each process holds the partitions it is given paused
  (at the offsets the store holds) until every process has its final share; then
  the clock starts and runs until the store shows every event applied (the
  tracking rows' offsets sum to ``total``; for the audit, the chain's head is the
  last position). A long-running consumer joins once, so the rate after the join
  is the one that matters; the rate with the join included is printed beside it.
  Exactness is checked after every run: each view table is equal, row for row, to
  the one-process run's (the audit's whole hash chain included), no audit row is
  left unlinked, and the offsets are the topic's end.
- floor: ONE bare kafka-python consumer in a consumer group reading the same topic
  and touching each value. It stays one process on purpose: it is "what a bare
  kafka-python consumer reads of these messages here", the yardstick for the cost
  our consumer adds per event. Scaling the floor out too would measure the machine
  (2 cores shared with the broker), not our overhead.
Each figure is the median of ``RUNS``; targets: consumer >= 50,000 events/s and
>= 0.4x the floor, judged on the best configuration (the scaled-out one; the
single-process figures are printed too). Latency is in ``bench_kafka_latency``.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer
from kafka.consumer.subscription_state import ConsumerRebalanceListener

from bench.workload import as_inbound, lifecycle_stream, topic_prefix
from consumers.codec import EventDecoder, encode
from consumers.deadletters import SEND_TIMEOUT_S, producer
from consumers.projector import (
    ProjectionConsumer,
    SeekToStored,
    events_consumer,
    projection_group,
)
from consumers.relay import Relay
from consumers.topics import EVENTS, client_options, delete_topics, ensure_topics, subscribe
from pmo.bootstrap import build_application, build_ingest
from pmo.settings import Settings
from projections.audit import UNLINKED
from projections.db import Db
from projections.service import build_projections

PROJECTS = int(os.environ.get("PMO_BENCH_PROJECTS", "8000"))  # ~ 100,000 stored events
RUNS = int(os.environ.get("PMO_BENCH_RUNS", "3"))
CONSUMERS = int(os.environ.get("PMO_BENCH_CONSUMERS", str(os.cpu_count() or 2)))
PROJECTIONS = ("projects", "audit")
TARGET_RATE = 50_000
TARGET_RATIO = 0.4


PREFIXES: list[str] = []  # every topic prefix this run made; its topics go at the end


def settings_in(tmp: Path, prefix: str) -> Settings:
    PREFIXES.append(prefix)
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
    messages = []  # the same messages, made before the clock: the floor only sends
    prev = 0
    for n in notifications:
        messages.append(encode(n, prev))
        prev = n.id
    started = time.perf_counter()
    futures = []
    for key, value, headers in messages:
        futures.append(kafka_producer.send(floor_topic, key=key, value=value, headers=headers))
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


class _HoldUntilGo(ConsumerRebalanceListener):  # type: ignore[misc]
    """The consumer's own listener (seek to the stored offsets), then pause until ``go``,
    telling the parent which partitions this process holds."""

    def __init__(self, inner: ConsumerRebalanceListener, consumer: KafkaConsumer, go: Any,
                 reports: Any, index: int) -> None:
        self._inner, self._consumer, self._go = inner, consumer, go
        self._reports, self._index = reports, index

    def on_partitions_revoked(self, revoked: Any) -> None:
        self._inner.on_partitions_revoked(revoked)

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._inner.on_partitions_assigned(assigned)
        if not self._go.is_set():
            self._consumer.pause(*assigned)
        self._reports.put((self._index, sorted(tp.partition for tp in assigned)))


def _consume_worker(fields: dict[str, Any], name: str, group: str, index: int, join: Any,
                    go: Any, stop: Any, reports: Any) -> None:
    """One ``pmo consume NAME`` process of the scaled-out run (its loop, its classes)."""
    settings = Settings(**fields)
    service = build_projections(settings)
    projection = service.projections[name]
    kafka_consumer = events_consumer(settings, group)
    consumer = ProjectionConsumer(settings, projection, EventDecoder.for_pmo(), kafka_consumer)
    hold = _HoldUntilGo(SeekToStored(kafka_consumer, projection.tracking, name),
                        kafka_consumer, go, reports, index)
    kafka_consumer.subscribe([settings.topic(EVENTS)], listener=hold)  # before any poll
    reports.put((index, None))  # ready: imported, connected
    while not join.wait(0.05):
        if stop.is_set():
            break
    while not go.is_set() and not stop.is_set():
        if kafka_consumer.poll(timeout_ms=20):
            raise RuntimeError("records polled while paused")
    kafka_consumer.resume(*kafka_consumer.assignment())
    while not stop.is_set():
        consumer.step()
    consumer.close()
    service.close()


def _store_done(db: Db, name: str, topic: str, total: int) -> bool:
    tracking = db.query("SELECT key, value FROM pv_tracking WHERE projection = ?", (name,))
    offsets = sum(int(v) for k, v in tracking if str(k).startswith(f"{topic}:"))
    if offsets < total:
        return False
    # The audit links an event once its predecessor is in; once every message is in, the
    # last transaction has linked them all (checked, not assumed).
    return name != "audit" or not db.query(f"SELECT 1 {UNLINKED} LIMIT 1")


def _fresh_group(settings: Settings, name: str) -> str:
    """A group of its own per attempt: an abandoned attempt's killed members stay in their
    group until their session times out. Positions live in the fresh store anyway."""
    return f"{projection_group(settings, name)}.{uuid.uuid4().hex[:8]}"


def consume_scaled_once(settings: Settings, name: str, total: int, store: Path,
                        processes: int) -> tuple[float, float, float]:
    """(events/s after the join, events/s with the join, join seconds): ``processes``
    consumers of one group on one fresh SQLite store."""
    run = settings.model_copy(update={"projection_store_url": f"sqlite:///{store}"})
    build_projections(run).close()  # tables exist before the clock, as for one process
    ctx = multiprocessing.get_context("spawn")
    go, stop, reports = ctx.Event(), ctx.Event(), ctx.Queue()
    joins = [ctx.Event() for _ in range(processes)]
    fields = run.model_dump()
    workers = [ctx.Process(target=_consume_worker,
                           args=(fields, name, group, i, joins[i], go, stop, reports),
                           daemon=True)
               for group in [_fresh_group(run, name)]  # one group, shared by every process
               for i in range(processes)]
    for w in workers:
        w.start()
    held: dict[int, list[int] | None] = {}
    ready_at = 0.0
    partitions = set(range(settings.kafka_partitions))
    try:
        while True:
            try:
                index, assigned = reports.get(timeout=60)
            except queue.Empty:
                raise RuntimeError(f"consumers did not join: {held}") from None
            if assigned is None:
                held[index] = None
                if len(held) == processes:
                    ready_at = time.perf_counter()
                    joins[0].set()
                continue
            # One process joins after the other: members that joined together were, in
            # some runs, rebalanced again after the start (a 3 s stall, the heartbeat
            # interval, inside the measurement). Joining in turn, each newcomer's rebalance
            # completes at the others' next heartbeat, before the clock starts.
            if held[index] is None and index + 1 < processes:
                joins[index + 1].set()
            held[index] = assigned
            shares = [set(a) for a in held.values() if a]
            if (len(shares) == processes and set().union(*shares) == partitions
                    and sum(map(len, shares)) == len(partitions)):
                break
        joined = time.perf_counter()
        go.set()
        db = Db(run.projection_store)
        topic = run.topic(EVENTS)
        while not _store_done(db, name, topic, total):
            if not all(w.is_alive() for w in workers):
                raise RuntimeError("a consumer process died")
            time.sleep(0.005)
        done = time.perf_counter()
        db.close()
        while not reports.empty():
            late = reports.get()
            print(f"    (process {late[0]} was assigned {late[1]} during the run: a rebalance)")
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=30)
            if w.is_alive():
                w.kill()
    join_s = joined - ready_at
    return total / (done - joined), total / (done - ready_at), join_s


def view_rows(store: Path, name: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the projection's tables and its partition offsets, sorted."""
    service = build_projections(Settings(projection_store_url=f"sqlite:///{store}"))
    projection = service.projections[name]
    rows = {table: sorted(service.db.query(f"SELECT * FROM {table}"), key=repr)
            for table in projection.tables}
    rows["offsets"] = sorted((k, v) for k, v in projection.tracking().items()
                             if not k.startswith("_"))
    service.close()
    return rows


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


def verdict(rate: float, floor: float) -> tuple[bool, str]:
    meets = rate >= TARGET_RATE and rate / floor >= TARGET_RATIO
    return meets, (f"ratio {rate / floor:.2f}x; target >= {TARGET_RATE:,}/s and >= "
                   f"{TARGET_RATIO}x: {'meets' if meets else 'MISSES'}")


def main() -> int:
    try:
        return measure()
    finally:
        delete_topics(os.environ.get("PMO_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
                      lambda topic: topic.startswith(tuple(PREFIXES)))


def measure() -> int:
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
            run = settings_in(tmp, topic_prefix())
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
        print(f"bare consumer floor (one process): {', '.join(f'{f:,.0f}' for f in floors)}"
              f" events/s; median {floor:,.0f}", flush=True)
        for name in PROJECTIONS:
            rates = []
            for run in runs:
                rates.append(consume_once(run, name, total))
                print(f"  consume {name}, 1 process: {rates[-1]:,.0f} events/s", flush=True)
            single = statistics.median(rates)
            print(f"consume[{name}] 1 process: median {single:,.0f} events/s; "
                  f"{verdict(single, floor)[1]}", flush=True)
            scaled, with_join, joins = [], [], []
            for run in runs:
                for attempt in range(3):
                    store = tmp / f"{run.topic_prefix}{name}.scaled{attempt}.sqlite"
                    try:
                        rate, rate_joined, join_s = consume_scaled_once(
                            run, name, total, store, CONSUMERS)
                        break
                    except RuntimeError as e:  # seen rarely: both members told "all 6"
                        print(f"    scaled run abandoned, started again: {e}", flush=True)
                else:
                    raise RuntimeError("the consumer group never split its partitions")
                reference = view_rows(Path(run.projection_store.path), name)
                exact = view_rows(store, name) == reference
                ok = ok and exact
                scaled.append(rate)
                with_join.append(rate_joined)
                joins.append(join_s)
                print(f"  consume {name}, {CONSUMERS} processes: {rate:,.0f} events/s after "
                      f"a {join_s:.2f} s group join ({rate_joined:,.0f}/s with it); views "
                      f"{'equal to' if exact else 'DIFFERENT FROM'} the 1-process run",
                      flush=True)
            rate = statistics.median(scaled)
            meets, text = verdict(rate, floor)
            ok = ok and meets
            print(f"consume[{name}] {CONSUMERS} processes: median {rate:,.0f} events/s "
                  f"(1 process {single:,.0f}, x{rate / single:.2f}); with the join "
                  f"{statistics.median(with_join):,.0f}/s, join median "
                  f"{statistics.median(joins):.2f} s; bare consumer floor {floor:,.0f} "
                  f"events/s; {text}", flush=True)
        app.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
