"""Topic names (CONTRACT section 3) and their creation by the workers.

Every name is prefixed with ``settings.topic_prefix`` so several environments can
share one cluster; consumer group ids carry the same prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer
from kafka.errors import KafkaTimeoutError, TopicAlreadyExistsError, for_code

from consumers.retry import retrying
from pmo.settings import Settings

INBOUND = "pmo.inbound"
DLQ = "pmo.inbound.dlq"
REJECTED = "pmo.inbound.rejected"
EVENTS = "pmo.events"
ALL = (INBOUND, DLQ, REJECTED, EVENTS)


def bootstrap(settings: Settings) -> str:
    if not settings.kafka_bootstrap:
        raise SystemExit("PMO_KAFKA_BOOTSTRAP is not set: the Kafka workers need a broker, "
                         "e.g. PMO_KAFKA_BOOTSTRAP=127.0.0.1:9092")
    return settings.kafka_bootstrap


def group_id(settings: Settings, name: str) -> str:
    return settings.topic(name)


def client_options(settings: Settings) -> dict[str, Any]:
    """Options every client shares; reconnect quickly after a broker restart."""
    return {"bootstrap_servers": bootstrap(settings), "reconnect_backoff_max_ms": 2000,
            "request_timeout_ms": 30_000}


def ensure_topics(settings: Settings, names: Iterable[str] = ALL) -> list[str]:
    """Create the (prefixed) topics that are missing; return their full names.

    Several workers start at once, so a topic another one has just created is fine.
    """
    full = [settings.topic(n) for n in names]
    retrying(lambda: _create(settings, full), what="creating topics")
    return full


def _create(settings: Settings, full: list[str]) -> None:
    admin = KafkaAdminClient(**client_options(settings))
    try:
        existing = set(admin.list_topics())
        missing = {name: {"num_partitions": settings.kafka_partitions,
                          "replication_factor": 1 if _single_node(admin) else -1}
                   for name in full if name not in existing}
        if missing:
            response = admin.create_topics(missing, timeout_ms=30_000, raise_errors=False)
            for answer in response["topics"]:
                error = for_code(answer["error_code"])
                if answer["error_code"] and error is not TopicAlreadyExistsError:
                    raise error(f"creating {answer['name']}: {answer.get('error_message')}")
        admin.wait_for_topics(full, timeout_ms=30_000)
    finally:
        admin.close()


def delete_topics(bootstrap_servers: str, select: Callable[[str], bool],
                  batch: int = 200) -> int:
    """Delete every topic whose name ``select`` accepts; return how many.

    For scratch environments (tests, benchmarks): a broker keeps each partition's
    files open, so topics left behind add up until it runs out of file handles."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=30_000)
    try:
        chosen = sorted(name for name in admin.list_topics() if select(name))
        for start in range(0, len(chosen), batch):
            admin.delete_topics(chosen[start:start + batch], timeout_ms=30_000,
                                raise_errors=False)
        return len(chosen)
    finally:
        admin.close()


def _single_node(admin: KafkaAdminClient) -> bool:
    # -1 lets the broker apply its default replication factor; a one-node
    # development cluster could still default to more than 1, so say 1 there.
    return len(admin.describe_cluster()["brokers"]) == 1


def subscribe(consumer: KafkaConsumer, topics: list[str], listener: Any = None) -> None:
    """Subscribe once the consumer's metadata knows every topic.

    A group leader that joins before it has a topic's metadata assigns none of its
    partitions, and nothing makes it look again for minutes (metadata max age).
    """
    def known() -> None:
        missing = [t for t in topics if not consumer.partitions_for_topic(t)]
        if missing:
            raise KafkaTimeoutError(f"no metadata yet for {missing}")

    retrying(known, what="reading topic metadata")
    consumer.subscribe(topics, listener=listener)
