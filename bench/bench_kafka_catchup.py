"""Kafka mode: time from the last publish to "caught up" (inbound = relay = lag = 0).

``pmo ingest``, ``pmo relay`` and ``pmo consume --all`` run as their own processes,
as deployed (SQLite stores). The bench publishes EVENTS CloudEvents back to back on
a 6-partition ``pmo.inbound``, keyed by subject (a directive portfolio, its manager
pool and projects with their costs: children land on other partitions than their
parents, so parking takes part), waits for the broker's acks, then polls what a
dashboard reads (``GET /v1/projections``' figures: the pipeline's inbound, parked
and relay counts, each view's watermark lag) every POLL_S until all are 0. Printed:
that time, and whether the first read at that moment is exact (every event stored,
the portfolio's actual cost the sum of the published costs).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from bench.workload import lifecycle_stream, topic_prefix
from consumers.deadletters import producer
from consumers.pipeline import Pipeline
from consumers.topics import INBOUND, delete_topics, ensure_topics
from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections.service import build_projections

EVENTS = int(os.environ.get("PMO_BENCH_CATCHUP_EVENTS", "20000"))
POLL_S = 0.02
TIMEOUT_S = 600.0


def watch(pipeline: Pipeline, app: Any, views: Any, workers: list[Any],
          published: float) -> tuple[float, float, float, int, int]:
    """Poll what a dashboard reads until all is 0: (when inbound reached 0, when relay did,
    when everything did, the most parked seen, the store's head)."""
    most_parked = 0
    stored_at = relayed_at = None
    while True:
        ahead = pipeline.status()
        most_parked = max(most_parked, ahead["parked"])
        head = app.recorder.max_notification_id() or 0
        lags = [row["lag"] for row in views.status(head)]
        now = time.monotonic()
        if stored_at is None and head and not ahead["inbound"]:
            stored_at = now
        if relayed_at is None and stored_at and not ahead["relay"]:
            relayed_at = now
        if stored_at and relayed_at and not any(ahead.values()) and not any(lags):
            return stored_at, relayed_at, now, most_parked, head
        if now - published > TIMEOUT_S:
            raise RuntimeError(f"not caught up in {TIMEOUT_S:.0f} s: {ahead}, {lags}")
        if any(w.poll() is not None for w in workers):
            raise RuntimeError("a worker died: see its log")
        time.sleep(POLL_S)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        settings = Settings(
            kafka_bootstrap=os.environ.get("PMO_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            topic_prefix=topic_prefix(), data_dir=tmp, kafka_partitions=6)
        ensure_topics(settings)
        env = {**os.environ, "PMO_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
               "PMO_TOPIC_PREFIX": settings.topic_prefix, "PMO_DATA_DIR": str(tmp),
               "PMO_KAFKA_PARTITIONS": "6"}
        logs = [(tmp / f"{name}.log").open("wb")  # closed in the finally below
                for name in ("ingest", "relay", "consume")]
        workers = [subprocess.Popen([sys.executable, "-m", "pmo.cli", *args], env=env,
                                    stdout=log, stderr=subprocess.STDOUT)
                   for args, log in zip((["ingest"], ["relay"], ["consume", "--all"]), logs,
                                        strict=True)]
        app = build_application(settings)
        views = build_projections(settings)
        pipeline = Pipeline(settings, app.recorder)
        events = lifecycle_stream(EVENTS // 11 + 1)[:EVENTS]
        costs = sum((Decimal(e["data"]["amount"]) for e in events
                     if e["type"] == "pmo.project.cost_recorded"), Decimal(0))
        try:
            time.sleep(3)  # the workers are up and in their groups
            kafka_producer = producer(settings, batch_size=256 * 1024, linger_ms=10)
            topic = settings.topic(INBOUND)
            started = time.monotonic()
            for e in events:
                kafka_producer.send(topic, key=e["subject"].encode(), value=orjson.dumps(e),
                                    headers=[("content-type", b"application/cloudevents+json")])
            kafka_producer.flush()
            published = time.monotonic()
            kafka_producer.close()
            stored_at, relayed_at, caught_up, most_parked, head = watch(
                pipeline, app, views, workers, published)
            shown = orjson.loads(views.portfolio("BENCH-PF") or b"{}")
            stored = len(app.ledger.positions_of([(e["source"], e["id"]) for e in events]))
            exact = stored == len(events) and Decimal(shown.get("actual_cost", "-1")) == costs
        finally:
            for w in workers:
                w.terminate()
            for w in workers:
                w.wait(30)
            for log in logs:
                log.close()
            pipeline.close()
            views.close()
            app.close()
            delete_topics(settings.kafka_bootstrap or "",
                          lambda topic: topic.startswith(settings.topic_prefix))
    print(f"== Kafka catch-up: {len(events):,} events published back to back on 6 "
          f"partitions (ingest, relay, consume --all as processes, SQLite) ==")
    print(f"published in {published - started:.2f} s; from the last publish: inbound = 0 "
          f"(all ingested, {most_parked:,} parked at most) after {stored_at - published:.2f} s, "
          f"relay = 0 after {relayed_at - published:.2f} s, inbound = relay = parked = lag = 0 "
          f"after {caught_up - published:.2f} s ({len(events) / (caught_up - started):,.0f} "
          f"events/s end to end)")
    print(f"first read at 0: {stored:,} of {len(events):,} published events stored "
          f"({head:,} store events with the internal ones), portfolio actual cost "
          f"{shown.get('actual_cost')} (published {costs}): {'exact' if exact else 'NOT EXACT'}")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
