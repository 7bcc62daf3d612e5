"""Sending CloudEvents from a JSON-lines file to ``pmo.inbound`` or to ``POST /v1/events``.

Lines go out as they are (a broken line too: the service, not this tool, decides
what is malformed, and dead-letters it). Kafka: structured mode by default, or
binary mode (``ce_*`` headers, ``data`` as the value); key = ``subject``.
"""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from kafka import KafkaProducer

from consumers.deadletters import SEND_TIMEOUT_S
from consumers.ingestor import STRUCTURED

Message = tuple[bytes | None, bytes, list[tuple[str, bytes]]]


def lines(path: str) -> Iterator[bytes]:
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                yield line.strip()


def as_message(line: bytes, *, binary: bool = False) -> Message:
    """(key, value, headers) of one line; a line that is not a JSON object goes as it is."""
    try:
        event: Any = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None, line, list(STRUCTURED)
    if not isinstance(event, dict):
        return None, line, list(STRUCTURED)
    subject = event.get("subject")
    key = str(subject).encode() if subject is not None else None
    if not binary:
        return key, line, list(STRUCTURED)
    headers = [("content-type", str(event.get("datacontenttype", "application/json")).encode())]
    headers += [(f"ce_{name}", str(value).encode()) for name, value in event.items()
                if name not in ("data", "datacontenttype") and value is not None]
    return key, orjson.dumps(event.get("data")), headers


def to_kafka(kafka_producer: KafkaProducer, topic: str, source: Iterable[bytes], *,
             binary: bool = False) -> int:
    """Send every line; return the count once the broker acknowledged them all."""
    futures = [kafka_producer.send(topic, key=key, value=value, headers=headers)
               for key, value, headers in (as_message(x, binary=binary) for x in source)]
    kafka_producer.flush(timeout=SEND_TIMEOUT_S)
    for future in futures:
        future.get(timeout=SEND_TIMEOUT_S)
    return len(futures)


def to_api(url: str, api_key: str, source: Iterable[bytes], batch: int = 500) -> Counter[str]:
    """POST the lines in batches (JSON arrays); count the statuses the API answered."""
    statuses: Counter[str] = Counter()
    chunk: list[bytes] = []
    for line in source:
        chunk.append(line)
        if len(chunk) == batch:
            statuses.update(_post(url, api_key, chunk))
            chunk = []
    if chunk:
        statuses.update(_post(url, api_key, chunk))
    return statuses


def _post(url: str, api_key: str, chunk: list[bytes]) -> list[str]:
    body = b"[" + b",".join(chunk) + b"]"
    request = urllib.request.Request(
        url.rstrip("/") + "/v1/events", data=body, method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as e:
        # A whole batch refused (400 for a broken line, 401, 413...): say why and stop.
        raise SystemExit(f"pmo: the API answered {e.code}: {e.read()[:500]!r}") from e
    return [str(r.get("status")) for r in answer.get("results", [answer])]
