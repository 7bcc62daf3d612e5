"""``pmo replay [--projection NAME] [--until TIME]``: rebuild projections from the event store.

Without ``--until``: blue/green (``projections.bluegreen``): the chosen views are built
beside the live ones from the whole notification log, in large batches, with a progress
bar on stderr and the rate at the end, then swapped in, all in one transaction; the
service may keep running (its readers see the old views until the swap). A killed replay
leaves the live views intact and resumes when run again. With ``--until``: the chosen
views are cleared and refilled in place up to that instant (stop the service first).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime

from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections.runner import REBUILD_BATCH, rebuild
from projections.service import build_projections

BAR = 40


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--projection", action="append", metavar="NAME",
                        help="rebuild only this projection (repeatable); default: all")
    parser.add_argument("--until", type=datetime.fromisoformat, metavar="TIME",
                        help="replay only events recorded at or before this ISO 8601 instant")
    parser.add_argument("--batch-size", type=int, default=REBUILD_BATCH, help=argparse.SUPPRESS)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.until is not None and args.until.utcoffset() is None:
        print("pmo replay: --until needs a UTC offset, e.g. 2026-03-01T00:00:00Z",
              file=sys.stderr)
        return 2
    app = build_application(settings)
    service = build_projections(settings)
    names = args.projection or service.names()
    unknown = [n for n in names if n not in service.projections]
    if unknown:
        print(f"pmo replay: unknown projection(s) {', '.join(unknown)}; "
              f"use {', '.join(service.names())}", file=sys.stderr)
        return 2
    total = app.recorder.max_notification_id() or 0
    began = time.perf_counter()

    def show(position: int) -> None:
        done = min(position / total, 1.0) if total else 1.0
        filled = int(done * BAR)
        rate = position / max(time.perf_counter() - began, 1e-9)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (BAR - filled)}] {done:6.1%} "
                         f"{position}/{total} {rate:,.0f} events/s")
        sys.stderr.flush()

    replayed = rebuild(app, service, names, args.until, show, args.batch_size)
    elapsed = time.perf_counter() - began
    sys.stderr.write("\n")
    print(f"replayed {replayed} positions into {', '.join(names)} in {elapsed:.2f}s "
          f"({replayed / max(elapsed, 1e-9):,.0f} events/s)")
    service.close()
    return 0
