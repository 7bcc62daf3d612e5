"""Sending CloudEvents from a JSON-lines file to ``pmo.inbound`` or to ``POST /v1/events``.

Lines go out as they are (a broken line too: the service, not this tool, decides
what is malformed, and dead-letters it; to the API a line that is not JSON goes
alone, as it cannot sit in a JSON array, and each refused line is reported).
Kafka: structured mode by default, or binary mode (``ce_*`` headers, ``data`` as
the value); key = ``subject``.
"""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
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


Report = Callable[[str], None]


def to_api(url: str, api_key: str, source: Iterable[bytes], batch: int = 500,
           report: Report | None = None) -> Counter[str]:
    """POST the lines in batches (JSON arrays); count the statuses the API answered.

    Each line stands on its own: one that is not JSON cannot go inside an array, so it is
    sent alone (the service answers, and logs, why it is refused) and the batches go on.
    ``report`` gets one message per line refused, with its number (from 1) and reason."""
    say = report or (lambda _message: None)
    statuses: Counter[str] = Counter()
    chunk: list[tuple[int, bytes]] = []
    for number, line in enumerate(source, 1):
        try:
            orjson.loads(line)
        except orjson.JSONDecodeError as e:
            statuses.update(_post_alone(url, api_key, number, line, f"not JSON ({e})", say))
            continue
        chunk.append((number, line))
        if len(chunk) == batch:
            statuses.update(_post(url, api_key, chunk, say))
            chunk = []
    if chunk:
        statuses.update(_post(url, api_key, chunk, say))
    return statuses


class ApiError(Exception):
    """The API could not be reached, or refused the request as a whole (401, 403, 5xx)."""


def _send(url: str, api_key: str, body: bytes) -> tuple[int, Any]:
    request = urllib.request.Request(
        url.rstrip("/") + "/v1/events", data=body, method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        text = e.read()
        if e.code in (400, 409, 413, 422):  # about this content: the caller says which line
            try:
                return e.code, json.loads(text)
            except ValueError:
                return e.code, {"detail": text[:500].decode("utf-8", "replace")}
        raise ApiError(f"the API answered {e.code}: {text[:500]!r}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise ApiError(f"cannot reach {url}: {e}") from None


def _post_alone(url: str, api_key: str, number: int, line: bytes, why: str,
                say: Report) -> list[str]:
    status, answer = _send(url, api_key, line)
    if status >= 400:
        say(f"line {number}: {answer.get('reason') or answer.get('detail') or why}")
        return ["invalid" if status in (400, 413, 422) else "rejected"]
    return [str(answer.get("status"))]


def _post(url: str, api_key: str, chunk: list[tuple[int, bytes]], say: Report) -> list[str]:
    body = b"[" + b",".join(line for _, line in chunk) + b"]"
    status, answer = _send(url, api_key, body)
    if status >= 400:
        # The batch as a whole was refused (too large, say): each line goes alone.
        out: list[str] = []
        for number, line in chunk:
            out += _post_alone(url, api_key, number, line, f"refused ({status})", say)
        return out
    results = answer.get("results", [answer])
    for (number, _), result in zip(chunk, results, strict=False):
        if result.get("status") in ("invalid", "rejected"):
            say(f"line {number}: {result.get('status')}: {result.get('reason')}")
    return [str(r.get("status")) for r in results]
