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
import sqlite3
import sys
import time
from datetime import datetime
from pathlib import Path

import psycopg

from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections.db import Db
from projections.runner import REBUILD_BATCH, rebuild
from projections.service import ProjectionService, build_projections
from storage.urls import StoreUrl, same_store

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


SQLITE_HEADER = b"SQLite format 3\x00"


def into_refusal(into: StoreUrl, settings: Settings) -> str | None:
    """Why ``--into`` must not be written, or None. Never a store of this service (the
    projection tables would land in the event store file, or a database would be written
    over its WAL file), and for SQLite only a new file or an existing SQLite database."""
    if same_store(into, settings.event_store):
        return "names the event store: give another projection store"
    if same_store(into, settings.projection_store):
        return "names the live projection store: give another projection store"
    if into.kind != "sqlite":
        return None
    path = Path(into.path)
    if path.is_dir():
        return f"{into.path} is a directory: give a file name"
    if path.exists():
        if not path.is_file():
            return f"{into.path} is not a regular file"
        try:
            with path.open("rb") as f:
                header = f.read(len(SQLITE_HEADER))
        except OSError as e:
            return f"cannot read {into.path}: {e.strerror or e}"
        if header and header != SQLITE_HEADER:
            return f"{into.path} exists and is not a SQLite database"
    return None


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
        why = into_refusal(into, settings)
        if why is not None:
            print(f"pmo replay: --into {why}", file=sys.stderr)
            return 2
    app = build_application(settings)
    if args.into is None:
        service = build_projections(settings)
    else:
        try:
            service = ProjectionService(Db(into))
        except (sqlite3.Error, psycopg.Error, OSError) as e:
            print(f"pmo replay: --into: cannot open that store: {e}", file=sys.stderr)
            return 2
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

    def waiting() -> None:
        sys.stderr.write("pmo replay: another pmo replay is rebuilding these views; "
                         "waiting for it to finish\n")
        sys.stderr.flush()

    replayed = rebuild(app, service, names, args.until, show, args.batch_size,
                       on_wait=waiting)
    elapsed = time.perf_counter() - began
    if args.until is not None:
        # The cut ends before the store's head: a bar left at "1.7% 41/2462" read as a
        # replay that stopped early. The whole of a cut is the cut.
        total = replayed
        show(replayed)
    sys.stderr.write("\n")
    print(f"replayed {replayed} positions into {', '.join(names)} in {elapsed:.2f}s "
          f"({replayed / max(elapsed, 1e-9):,.0f} events/s)")
    service.close()
    return 0
