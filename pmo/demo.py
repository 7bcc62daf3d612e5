"""``pmo demo``: load a year of three PMOs through the same ingest path as everything else.

In process (default), into the store of ``PMO_DATA_DIR`` / ``PMO_EVENT_STORE_URL``;
or with ``--api URL`` through ``POST /v1/events`` of a running service, with the
key in ``PMO_DEMO_API_KEY``. Loading twice changes nothing: every event has a
fixed id, so the second run answers ``duplicate`` throughout.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson

from ingest.cloudevents import parse_structured
from ingest.service import Inbound
from pmo.arguments import api_url, positive
from pmo.bootstrap import build_services
from pmo.demo_data import generate
from pmo.settings import Settings

BATCH = 500


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=7, help="same seed, same demo")
    parser.add_argument("--projects", type=positive, default=100,
                        help="how many projects (default: 100)")
    parser.add_argument("--api", metavar="URL", type=api_url,
                        help="POST to this service (e.g. http://127.0.0.1:8000) instead of "
                             "writing the store directly; key from PMO_DEMO_API_KEY")


def run(args: argparse.Namespace, settings: Settings) -> int:
    events = generate(args.seed, args.projects)
    if args.api:
        key = settings.demo_api_key.get_secret_value() if settings.demo_api_key else None
        if not key:
            print("pmo demo: set PMO_DEMO_API_KEY to a key with the publisher role",
                  file=sys.stderr)
            return 2
        # Imported here: only this path needs the publisher (and its Kafka client).
        from consumers.publisher import ApiError, to_api  # noqa: PLC0415

        try:
            counts = to_api(args.api, key, (orjson.dumps(e) for e in events), batch=BATCH)
        except ApiError as e:
            print(f"pmo demo: {e}", file=sys.stderr)
            return 1
    else:
        counts = load(settings, events)
    print(f"pmo demo (seed {args.seed}): {len(events)} events: "
          + ", ".join(f"{status} {n}" for status, n in sorted(counts.items())))
    return 0 if counts.keys() <= {"accepted", "duplicate", "queued"} else 1


def load(settings: Settings, events: Sequence[dict[str, Any]]) -> Counter[str]:
    """Submit ``events`` through the configured ingest path, in batches; counts by outcome."""
    services = build_services(settings)
    counts: Counter[str] = Counter()
    try:
        for start in range(0, len(events), BATCH):
            chunk = events[start:start + BATCH]
            results = services.ingest.submit(
                [Inbound(orjson.dumps(e), parse_structured(e), origin="demo") for e in chunk])
            counts.update(r.status for r in results)
    finally:
        close = getattr(services.ingest, "close", None)
        if callable(close):
            close()  # Kafka mode: flush what was queued
    return counts
