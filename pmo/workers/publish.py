"""``pmo publish FILE``: send CloudEvents from a JSON-lines file to ``pmo.inbound`` (Kafka,
structured mode unless ``--binary``) or, with ``--api URL``, to ``POST /v1/events`` in
batches with the key in ``PMO_PUBLISH_API_KEY``."""

from __future__ import annotations

import argparse
import os
import sys

from consumers.deadletters import producer
from consumers.publisher import ApiError, lines, to_api, to_kafka
from consumers.topics import INBOUND, ensure_topics
from pmo.arguments import api_url, positive
from pmo.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.add_argument("file", help="JSON lines, one CloudEvent per line")
    parser.add_argument("--api", metavar="URL", type=api_url,
                        help="the API's base URL instead of Kafka")
    parser.add_argument("--batch", type=positive, default=500, help="events per API request")
    parser.add_argument("--binary", action="store_true", help="Kafka binary content mode")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if not os.path.isfile(args.file):
        why = "not a regular file" if os.path.exists(args.file) else "no such file"
        print(f"pmo publish: {why}: {args.file}", file=sys.stderr)
        return 2
    if args.api:
        api_key = (settings.publish_api_key.get_secret_value()
                   if settings.publish_api_key else None)
        if not api_key:
            print("pmo publish: set PMO_PUBLISH_API_KEY to a key with the publisher role",
                  file=sys.stderr)
            return 2
        try:
            statuses = to_api(args.api, api_key, lines(args.file), batch=args.batch,
                              report=lambda m: print(f"pmo publish: {m}", file=sys.stderr))
        except (ApiError, OSError) as e:
            print(f"pmo publish: {e}", file=sys.stderr)
            return 1
        print(f"published to {args.api}: {dict(statuses)}")
        # Non-zero when a line was refused: each one was reported above, with its number.
        return 0 if statuses.keys() <= {"accepted", "duplicate", "queued"} else 1
    ensure_topics(settings, [INBOUND])
    kafka_producer = producer(settings, linger_ms=10)
    try:
        count = to_kafka(kafka_producer, settings.topic(INBOUND), lines(args.file),
                         binary=args.binary)
    finally:
        kafka_producer.close()
    print(f"published {count} events to {settings.topic(INBOUND)}")
    return 0
