"""Kafka mode tried from outside: what an upstream tool can send to ``pmo.inbound`` and to
a worker's ``--metrics-port``, against the real broker and real worker processes.

Each test is a regression test of something found that way:

- a message carrying about 1 MB of headers (or a key near 1 MB), refused: its dead
  letter (the original's headers plus ours) was over the producer's limit, and
  ``pmo ingest`` crashed on it at every start: the partition stalled for good;
- the ingest worker's ``/metrics``: ``pmo_pipeline_inbound`` left out the parked
  events (``GET /v1/projections`` counts them), and was read after ``parked`` (the
  order that lets an event slip by unseen); ``pmo_ingest_events_total`` counted a
  parked event as ``rejected`` and never counted what the retries decided;
- a worker's metrics port held a thread and a socket for every client that connected
  and sent nothing (without end: 415 threads after a minute of one idle client
  after another), answered HEAD and POST with 501.
"""

from __future__ import annotations

import random
import re
import socket
import sqlite3
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewPartitions

from consumers.pipeline import Pipeline
from consumers.rejections import RejectionConsumer
from consumers.topics import DLQ, INBOUND, REJECTED
from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections.db import Db
from projections.rejections import RejectionLog
from tests.conftest import KAFKA_BOOTSTRAP
from tests.e2e.conftest import free_port
from tests.kafka_support import Worker, header, kafka_settings, read_all, until, wait_for

pytestmark = pytest.mark.kafka

STRUCTURED = [("content-type", b"application/cloudevents+json")]


def event(type_: str, subject: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"specversion": "1.0", "id": uuid.uuid4().hex, "source": "urn:edges",
            "type": type_, "subject": subject, "time": "2026-03-02T09:30:00Z", "data": data}


def opened(subject: str) -> dict[str, Any]:
    return event("pmo.portfolio.opened", subject, {
        "name": "Edges", "pmo_type": "controlling", "currency": "EUR",
        "budget_envelope": "100000", "owner": "pmo"})


def proposed(subject: str, portfolio: str) -> dict[str, Any]:
    return event("pmo.project.proposed", subject, {
        "portfolio_id": portfolio, "name": "x", "sponsor": "cfo", "budget_requested": "10",
        "planned_start": "2026-01-01", "planned_finish": "2026-02-01"})


def send(topic: str, messages: list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]],
         ) -> None:
    # As an upstream tool near the broker's limit would: a larger request size.
    producer = KafkaProducer(bootstrap_servers=KAFKA_BOOTSTRAP, max_request_size=2_000_000)
    for key, value, headers in messages:
        producer.send(topic, key=key, value=value, headers=headers).get(30)
    producer.close()


def receipts(settings: Settings) -> int:
    try:
        with sqlite3.connect(settings.event_store.path) as db:
            return int(db.execute("SELECT COUNT(*) FROM inbound_receipts").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_a_megabyte_of_headers_or_of_key_is_dead_lettered_and_ingest_goes_on(
        tmp_path: Path) -> None:
    settings = kafka_settings(tmp_path, inbound_partitions=1)
    inbound = settings.topic(INBOUND)
    # 10,178 headers of 100 bytes (103 on the wire), and a key of 1,048,400 bytes: the
    # broker takes each (its limit is 1,048,588 bytes a batch), but the dead letter, our
    # headers added, was over the producer's 1,048,576 and crashed pmo ingest.
    many = [(f"x{i:05d}", b"y" * 94) for i in range(10_178)]
    send(inbound, [(b"P-1", b"not json", many),
                   (b"k" * 1_048_400, b"not json either", []),
                   (b"PF-1", orjson.dumps(opened("PF-1")), STRUCTURED)])
    worker = Worker(settings, tmp_path, "ingest")
    try:
        wait_for(lambda: receipts(settings) == 1, "the event behind them stored",
                 timeout_s=60, workers=[worker])
        dead = read_all(settings.topic(DLQ), 2, timeout_s=30)
        assert worker.alive()
    finally:
        worker.stop()
    assert len(dead) == 2
    by_value = {m.value: m for m in dead}
    headers_dropped = by_value[b"not json"]
    assert header(headers_dropped, "pmo_headers_dropped") == b"10178"
    assert header(headers_dropped, "pmo_headers_sha256") is not None
    assert headers_dropped.key == b"P-1"
    assert (header(headers_dropped, "pmo_reason") or b"").startswith(b"not valid JSON")
    assert header(headers_dropped, "pmo_source_offset") == b"0"
    long_key = by_value[b"not json either"]
    assert long_key.key == b"k" * 500_000
    assert header(long_key, "pmo_key_sha256") is not None
    assert header(long_key, "pmo_reason")


def metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split(" ")[1])
    return None


def scrape(port: int, path: str = "/metrics", method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""
    except OSError:  # not listening yet
        return 0, ""


def test_the_ingest_workers_metrics_count_parked_events_truly(tmp_path: Path) -> None:
    # The orphan is parked for 8 s: long enough for a loaded machine to see both parked
    # (the gauges may be 1 s old: scrapes share a measurement), short enough for a test.
    settings = kafka_settings(tmp_path, inbound_partitions=1, park_seconds=8)
    inbound = settings.topic(INBOUND)
    port = free_port()
    worker = Worker(settings, tmp_path, "ingest", "--metrics-port", str(port))
    try:
        wait_for(lambda: scrape(port)[0] == 200, "the metrics port", timeout_s=60,
                 workers=[worker])
        # An orphan (its portfolio never comes), a child whose parent comes later, and
        # one the DLQ takes.
        send(inbound, [(b"P-ORPHAN", orjson.dumps(proposed("P-ORPHAN", "PF-NEVER")), STRUCTURED),
                       (b"P-1", orjson.dumps(proposed("P-1", "PF-1")), STRUCTURED),
                       (b"P-1", b"{broken", STRUCTURED)])
        # Both parked, offsets committed: what waits is still inbound, as the API says.
        wait_for(lambda: metric(scrape(port)[1], "pmo_pipeline_parked") == 2.0,
                 "two parked", timeout_s=30, workers=[worker])
        text = scrape(port)[1]
        assert metric(text, "pmo_pipeline_inbound") == 2.0
        assert metric(text, "pmo_ingest_parked") == 2.0
        assert metric(text, 'pmo_ingest_events_total{status="rejected"}') == 0.0
        assert metric(text, 'pmo_ingest_events_total{status="invalid"}') == 1.0
        send(inbound, [(b"PF-1", orjson.dumps(opened("PF-1")), STRUCTURED)])
        wait_for(lambda: metric(scrape(port)[1], "pmo_pipeline_inbound") == 0.0,
                 "nothing waiting", timeout_s=30, workers=[worker])
        text = scrape(port)[1]
    finally:
        worker.stop()
    rejected = read_all(settings.topic(REJECTED), 1, timeout_s=20)
    dead = read_all(settings.topic(DLQ), 1, timeout_s=20)
    assert [header(m, "pmo_reason") for m in rejected] == [b"unknown portfolio 'PF-NEVER'"]
    assert metric(text, "pmo_pipeline_parked") == 0.0
    # Each of the four messages counted once, with the outcome it got.
    assert metric(text, 'pmo_ingest_events_total{status="accepted"}') == receipts(settings) == 2
    assert metric(text, 'pmo_ingest_events_total{status="rejected"}') == len(rejected) == 1
    assert metric(text, 'pmo_ingest_events_total{status="invalid"}') == len(dead) == 1
    by_type = ('pmo_ingest_events_by_type_total{status="accepted",'
               'type="pmo.project.proposed"}')
    assert metric(text, by_type) == 1.0


def threads(worker: Worker) -> int:
    assert worker.process is not None
    return len(list(Path(f"/proc/{worker.process.pid}/task").iterdir()))


def test_a_workers_metrics_port_outlives_idle_clients_floods_and_odd_requests(
        tmp_path: Path) -> None:
    settings = kafka_settings(tmp_path)
    port = free_port()
    worker = Worker(settings, tmp_path, "relay", "--metrics-port", str(port))
    held: list[socket.socket] = []
    try:
        wait_for(lambda: scrape(port)[0] == 200, "the metrics port", timeout_s=60,
                 workers=[worker])
        before = threads(worker)
        status, body = scrape(port, method="HEAD")
        assert (status, body) == (200, "")
        assert scrape(port, "/healthz", method="HEAD")[0] == 200
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                             method=method, data=b"x" * 100_000)
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            assert refused.value.code == 405
            assert refused.value.headers["Allow"] == "GET, HEAD"
        # 150 clients that connect and never finish their request.
        for _ in range(150):
            client = socket.create_connection(("127.0.0.1", port), timeout=10)
            client.sendall(b"GET /metrics HTTP/1.1\r\n")
            held.append(client)
        time.sleep(0.5)
        assert threads(worker) <= before + 40  # at most 32 served at once
        assert worker.alive()
        # Each idle one is dropped after its timeout; then a scrape answers again.
        wait_for(lambda: scrape(port)[0] == 200, "a scrape after the idle clients",
                 timeout_s=20, workers=[worker])
        held[0].settimeout(1)
        assert held[0].recv(100) == b""  # closed by the worker, not waiting forever
    finally:
        for client in held:
            client.close()
        worker.stop()


def parked_rows(settings: Settings) -> int:
    try:
        with sqlite3.connect(settings.event_store.path) as db:
            return int(db.execute("SELECT COUNT(*) FROM pmo_parked").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return -1


def test_events_parked_before_parking_is_turned_off_are_rejected_not_kept(
        tmp_path: Path) -> None:
    settings = kafka_settings(tmp_path, inbound_partitions=1, park_seconds=300)
    send(settings.topic(INBOUND), [(b"P-O", orjson.dumps(proposed("P-O", "PF-NEVER")),
                                    STRUCTURED)])
    worker = Worker(settings, tmp_path, "ingest")
    try:
        wait_for(lambda: parked_rows(settings) == 1, "the orphan parked", timeout_s=60,
                 workers=[worker])
        worker.stop()
        worker.env["PMO_PARK_SECONDS"] = "0"  # "0 rejects at once": the operator's switch
        worker.start()
        # It used to stay parked for good: the pipeline never at 0, its receipt "parked".
        wait_for(lambda: parked_rows(settings) == 0, "the parked orphan decided",
                 timeout_s=30, workers=[worker])
    finally:
        worker.stop()
    rejected = read_all(settings.topic(REJECTED), 1, timeout_s=20)
    assert [header(m, "pmo_reason") for m in rejected] == [b"unknown portfolio 'PF-NEVER'"]
    assert receipts(settings) == 0


def test_a_transactional_publisher_its_aborted_messages_unstored_and_inbound_reaches_0(
        tmp_path: Path) -> None:
    settings = kafka_settings(tmp_path, inbound_partitions=1)
    inbound = settings.topic(INBOUND)
    # An upstream tool with exactly-once delivery (Kafka Streams, Connect, a migration
    # job): one transaction committed, one aborted. Each also leaves a marker that takes
    # an offset of pmo.inbound.
    producer = KafkaProducer(bootstrap_servers=KAFKA_BOOTSTRAP,
                             transactional_id=f"edges-{uuid.uuid4().hex}")
    producer.init_transactions()
    producer.begin_transaction()
    for n in range(3):
        producer.send(inbound, key=f"PF-{n}".encode(), value=orjson.dumps(opened(f"PF-{n}")))
    producer.commit_transaction()
    producer.begin_transaction()
    aborted = [opened(f"PF-X{n}") for n in range(2)]
    for e in aborted:
        producer.send(inbound, key=e["subject"].encode(), value=orjson.dumps(e))
    producer.flush()
    producer.abort_transaction()
    producer.close()
    app = build_application(settings)
    pipeline = Pipeline(settings, app.recorder)
    worker = Worker(settings, tmp_path, "ingest")
    try:
        wait_for(lambda: receipts(settings) >= 3 and pipeline.inbound() == 0,
                 "the committed three stored and nothing inbound", timeout_s=60,
                 workers=[worker])
        time.sleep(1)  # an aborted message stored late would show now
        assert receipts(settings) == 3
        with sqlite3.connect(settings.event_store.path) as db:
            ids = {row[0] for row in db.execute("SELECT event_id FROM inbound_receipts")}
        assert ids.isdisjoint(e["id"] for e in aborted)
    finally:
        worker.stop()
        pipeline.close()
        app.close()


def test_compressed_batches_of_every_kafka_codec_are_read(tmp_path: Path) -> None:
    settings = kafka_settings(tmp_path, inbound_partitions=1)
    inbound = settings.topic(INBOUND)
    # What a Java or Go producer often sends; kafka-python reads lz4, snappy and zstd
    # only with their libraries (without them pmo ingest crashed at every start).
    codecs = ["gzip", "lz4", "snappy", "zstd"]
    for codec in codecs:
        producer = KafkaProducer(bootstrap_servers=KAFKA_BOOTSTRAP, compression_type=codec)
        producer.send(inbound, key=codec.encode(), value=orjson.dumps(opened(codec))).get(30)
        producer.close()
    worker = Worker(settings, tmp_path, "ingest")
    try:
        wait_for(lambda: receipts(settings) == len(codecs), "one event per codec stored",
                 timeout_s=60, workers=[worker])
    finally:
        worker.stop()


def test_inbound_counts_a_message_on_a_partition_added_after_the_first_measurement(
        tmp_path: Path) -> None:
    settings = kafka_settings(tmp_path, inbound_partitions=1)
    inbound = settings.topic(INBOUND)
    app = build_application(settings)
    pipeline = Pipeline(settings, app.recorder)  # the API keeps one, as here
    try:
        assert pipeline.inbound() == 0
        admin = KafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP)
        admin.create_partitions({inbound: NewPartitions(total_count=3)})  # scaling ingest
        admin.close()
        send(inbound, [(b"PF-1", orjson.dumps(opened("PF-1")), STRUCTURED)])
        producer = KafkaProducer(bootstrap_servers=KAFKA_BOOTSTRAP)
        producer.send(inbound, key=b"PF-2", value=orjson.dumps(opened("PF-2")),
                      partition=2).get(30)
        producer.close()
        # Its cached metadata knew one partition: it read 1 (then 0 once ingested) while
        # the message on partition 2 waited.
        assert pipeline.inbound() == 2
        assert pipeline.status()["inbound"] == 2
    finally:
        pipeline.close()
        app.close()


def test_the_rejection_log_reads_partitions_added_to_the_dead_letter_topics(
        tmp_path: Path) -> None:
    settings = kafka_settings(tmp_path)
    dlq = settings.topic(DLQ)
    db = Db(settings.projection_store)
    log = RejectionLog(db)
    log.create_tables()
    reader = RejectionConsumer(settings, log, recheck_s=0.5)
    try:
        admin = KafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP)
        admin.create_partitions({dlq: NewPartitions(total_count=6)})  # from 3
        admin.close()
        # Dead letters as pmo ingest writes them, keyed by subject: on every partition.
        headers = [("pmo_reason", b"not valid JSON"), ("pmo_kind", b"dlq"),
                   ("pmo_received_at", b"2026-11-30T06:00:00+00:00")]
        producer = KafkaProducer(bootstrap_servers=KAFKA_BOOTSTRAP)
        for partition in range(6):
            producer.send(dlq, key=b"P-%d" % partition, value=b"{not json",
                          headers=headers, partition=partition).get(30)
        producer.close()
        # Assigned once at start, the reader never read partitions 3-5.
        until(reader.step, lambda: reader.recorded >= 6, timeout_s=30)
        for _ in range(5):
            reader.step()
        assert log.counts() == {"dlq": 6, "rejected": 0}
    finally:
        reader.close()
        db.close()


# Classes an upstream tool may send, each with the outcome the contract gives it: "stored",
# "dlq" or "rejected" (with a reason), "duplicate" (a repeat of a stored source+id).
def _edge_classes(rng: random.Random) -> list[tuple[str, bytes | None, bytes | None,
                                                    list[tuple[str, bytes]], str, str | None]]:
    out: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]], str,
                    str | None]] = []

    def cost(subject: str = "P-1") -> dict[str, Any]:
        return event("pmo.project.cost_recorded", subject, {
            "amount": rng.choice(["1.00", "0.10", "2.50"]), "currency": "EUR",
            "incurred_on": "2026-02-01", "category": "labour", "reference": "r"})

    def binary(e: dict[str, Any], *, drop: tuple[str, ...] = (),
               content_type: bytes | None = b"application/json",
               ) -> list[tuple[str, bytes]]:
        headers = [(f"ce_{k}", str(v).encode()) for k, v in e.items()
                   if k != "data" and k not in drop]
        return headers + ([("content-type", content_type)] if content_type is not None else [])

    def add(label: str, e: dict[str, Any] | None, key: bytes | None, value: bytes | None,
            headers: list[tuple[str, bytes]], want: str) -> None:
        out.append((label, key, value, headers, want, e["id"] if e else None))

    data = orjson.dumps
    for _ in range(3):
        e = cost()
        add("binary: ce_id twice", e, b"P-1", data(e["data"]),
            [*binary(e), ("ce_id", b"other")], "dlq")
        e = cost()
        add("binary: content-type twice", e, b"P-1", data(e["data"]),
            [*binary(e), ("content-type", b"application/json")], "dlq")
        e = cost()
        add("binary: ce_subject empty", e, b"", data(e["data"]),
            [*binary(e, drop=("subject",)), ("ce_subject", b"")], "dlq")
        e = cost()
        add("binary: ce_source not UTF-8", e, b"P-1", data(e["data"]),
            [(k, b"urn:\xff\xfe" if k == "ce_source" else v) for k, v in binary(e)], "dlq")
        e = cost()
        add("binary: no content-type", e, b"P-1", data(e["data"]),
            binary(e, content_type=None), "stored")
        e = cost()
        add("binary: content-type with parameters", e, b"P-1", data(e["data"]),
            binary(e, content_type=b"application/json; charset=utf-8"), "stored")
        for odd in (b"text/plain", b"", b"\xff\xfe"):
            e = cost()
            add("binary: content-type odd", e, b"P-1", data(e["data"]),
                binary(e, content_type=odd), "dlq")
        e = cost("P-1%2D")  # the Kafka binding has no percent-decoding: an unknown id
        add("binary: percent-encoded subject", e, b"P-1%2D", data(e["data"]), binary(e),
            "rejected")
        e = cost()
        add("binary: upper-case header names", e, b"P-1", data(e["data"]),
            [(k.upper(), v) for k, v in binary(e)], "stored")
        e = cost()
        add("binary: null value", e, b"P-1", None, binary(e), "dlq")
        e = cost()
        add("binary: data an array", e, b"P-1", b"[1,2]", binary(e), "dlq")
        e = cost()
        add("structured: not UTF-8", e, b"P-1", data(e)[:-1] + b',"x":"\xff"}', STRUCTURED,
            "dlq")
        for value in (b"[]", b'"x"', b"1", b"null", b"true"):
            add("structured: JSON but not an object", None, None, value, STRUCTURED, "dlq")
        e = cost()
        add("structured: a BOM", e, b"P-1", b"\xef\xbb\xbf" + data(e), STRUCTURED, "dlq")
        for label, size, want in (("structured: exactly the limit", LIMIT, "stored"),
                                  ("structured: one byte over", LIMIT + 1, "dlq")):
            e = cost()
            raw = data(e)
            add(label, e, b"P-1", raw[:-1] + b" " * (size - len(raw)) + b"}", STRUCTURED,
                want)
        add("tombstone with a key", None, b"P-1", None, [], "dlq")
        e = cost()
        add("structured: no key", e, None, data(e), STRUCTURED, "stored")
        e = cost()
        add("structured: key not the subject", e, b"P-2", data(e), STRUCTURED, "stored")
        e = cost()
        add("structured: 20,000 headers", e, b"P-1", data(e),
            STRUCTURED + [(f"x{k}", b"y") for k in range(20_000)], "stored")
        first = cost()
        again = {**first, "subject": "P-2", "data": {**first["data"], "amount": "9.00"}}
        add("same source+id, other body, other key", first, b"P-1", data(first), STRUCTURED,
            "stored")
        add("same source+id, other body, other key", again, b"P-2", data(again), STRUCTURED,
            "duplicate")
    rng.shuffle(out)
    return out


LIMIT = 16 * 1024


@pytest.mark.parametrize("seed", [1, 2])
def test_every_edge_class_ends_stored_or_refused_with_a_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    monkeypatch.setenv("PMO_MAX_BODY_BYTES", str(LIMIT))
    settings = kafka_settings(tmp_path, max_body_bytes=LIMIT, park_seconds=1)
    inbound = settings.topic(INBOUND)
    setup = [opened("PF-1")]
    for project in ("P-1", "P-2"):
        setup += [proposed(project, "PF-1"),
                  event("pmo.project.approved", project, {"approved_budget": "1000.00",
                                                          "approver": "board"}),
                  event("pmo.project.started", project, {"started_on": "2026-01-02"})]
    send(inbound, [(e["subject"].encode(), orjson.dumps(e), STRUCTURED) for e in setup])
    messages = _edge_classes(random.Random(seed))
    producer = KafkaProducer(bootstrap_servers=KAFKA_BOOTSTRAP, linger_ms=5)
    for _, key, value, headers, _, _ in messages:
        producer.send(inbound, key=key, value=value, headers=headers)
    producer.flush()
    producer.close()
    worker = Worker(settings, tmp_path, "ingest")
    want = {w: sum(1 for m in messages if m[4] == w) for w in ("stored", "dlq", "rejected")}
    try:
        wait_for(lambda: receipts(settings) == len(setup) + want["stored"],
                 "every storable one stored", timeout_s=60, workers=[worker])
        dead = read_all(settings.topic(DLQ), want["dlq"], timeout_s=30)
        rejected = read_all(settings.topic(REJECTED), want["rejected"], timeout_s=30)
        assert worker.alive()
    finally:
        worker.stop()
    # Nothing lost, nothing doubled: stored + dead-lettered + duplicates = published.
    assert receipts(settings) == len(setup) + want["stored"]
    assert (len(dead), len(rejected)) == (want["dlq"], want["rejected"])
    assert all(header(m, "pmo_reason") for m in dead + rejected)
    with sqlite3.connect(settings.event_store.path) as db:
        stored = {row[0] for row in db.execute("SELECT event_id FROM inbound_receipts")}
    refused = {i for m in dead + rejected for i in refused_ids(m)}
    for label, _, _, _, outcome, event_id in messages:
        if event_id is None:
            continue
        got = "stored" if event_id in stored else "refused" if event_id in refused else None
        expected = {"stored": "stored", "duplicate": "stored"}.get(outcome, "refused")
        assert got == expected, (label, outcome, got)


def refused_ids(message: Any) -> set[str]:
    """The CloudEvent ids a dead letter carries: its ce_id headers, or its value's "id"."""
    ids = {v.decode(errors="replace") for k, v in message.headers if k == "ce_id"}
    match = re.search(rb'"id":"([0-9a-f]{32})"', message.value or b"")
    return ids | ({match.group(1).decode()} if match else set())
