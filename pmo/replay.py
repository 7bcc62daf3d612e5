"""``pmo replay [--projection NAME] [--until TIME --into URL]``: rebuild projections from the store.

Without ``--until``: blue/green (``projections.bluegreen``): the chosen views are built
beside the live ones from the whole notification log, in large batches, with a progress
bar on stderr and the rate at the end, then swapped in, all in one transaction; the
service may keep running (its readers see the old views until the swap). A killed replay
leaves the live views intact and resumes when run again. ``--until`` never rewinds the
live views (CONTRACT section 15): it needs ``--into URL``, another projection store,
which receives the views as recorded up to that instant.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections.db import Db
from projections.runner import REBUILD_BATCH, rebuild
from projections.service import ProjectionService, build_projections
from storage.urls import StoreUrl

BAR = 40


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--projection", action="append", metavar="NAME",
                        help="rebuild only this projection (repeatable); default: all")
    parser.add_argument("--until", type=datetime.fromisoformat, metavar="TIME",
                        help="replay only events recorded at or before this ISO 8601 instant")
    parser.add_argument("--into", metavar="URL",
                        help="projection store to write (sqlite:///path or postgresql://...); "
                        "required with --until")
    parser.add_argument("--batch-size", type=int, default=REBUILD_BATCH, help=argparse.SUPPRESS)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.until is not None and args.until.utcoffset() is None:
        print("pmo replay: --until needs a UTC offset, e.g. 2026-03-01T00:00:00Z",
              file=sys.stderr)
        return 2
    if args.until is not None and args.into is None:
        print("pmo replay: --until would rewind the live views; write them elsewhere with "
              "--into URL, e.g. --into sqlite:///./as-of.sqlite (or use pmo audit snapshot)",
              file=sys.stderr)
        return 2
    if args.into is not None:
        try:
            into = StoreUrl.parse(args.into)
        except ValueError as e:
            print(f"pmo replay: --into: {e}", file=sys.stderr)
            return 2
        live = settings.projection_store
        if into == live or (into.kind == live.kind == "sqlite"
                            and Path(into.path).resolve() == Path(live.path).resolve()):
            print("pmo replay: --into names the live projection store", file=sys.stderr)
            return 2
    app = build_application(settings)
    service = (build_projections(settings) if args.into is None
               else ProjectionService(Db(into)))
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
