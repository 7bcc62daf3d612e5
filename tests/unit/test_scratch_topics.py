"""Which topics a test run may delete from the shared broker: only scratch ones."""

from __future__ import annotations

import time

from bench.workload import topic_prefix
from tests.kafka_support import MADE, STALE_AFTER_S, is_stale, scratch_prefix


def test_a_fresh_prefix_is_kept_and_remembered() -> None:
    prefix = scratch_prefix()
    assert prefix in MADE
    MADE.discard(prefix)
    assert not is_stale(f"{prefix}pmo.inbound", time.time())


def test_an_old_prefix_and_the_older_formats_are_stale() -> None:
    now = time.time()
    old = f"t{int(now - STALE_AFTER_S - 60)}xabcdef.pmo.events"
    assert is_stale(old, now)
    assert is_stale("t0123456789ab.pmo.inbound.dlq", now)
    assert is_stale("cu01234567.pmo.events", now)


def test_topics_of_real_environments_are_never_stale() -> None:
    now = time.time()
    for topic in ("pmo.inbound", "pmo.events", "acme.pmo.events", "__consumer_offsets",
                  "team.pmo.inbound", "t1.pmo.events", "tABCDEF012345.pmo.events"):
        assert not is_stale(topic, now), topic


def test_a_benchmarks_topics_are_left_alone_while_it_runs_and_swept_once_old() -> None:
    # The Kafka benchmarks named their topics cu…/lat… (the legacy forms every test session
    # deletes at its first Kafka test), so a make test beside a make bench pulled them out
    # from under the running benchmark.
    topic = f"{topic_prefix()}pmo.inbound"
    now = time.time()
    assert not is_stale(topic, now)
    assert is_stale(topic, now + STALE_AFTER_S + 60)
