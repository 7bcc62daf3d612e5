"""Audit evidence: verify, anchor, snapshot and export on a generated store.

Baseline, measured in the same run: reading the store's log with recording times
and one SHA-256 of each event's bytes in one process (the least any verification
must do). Verify is measured in one process and with its default worker processes.
Target (issue 11): verify >= 200,000 events/s. Run: ``python -m bench.bench_audit``
(``--projects 20000`` gives about 1,000,000 events).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.bench_replay import history, load
from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections import anchors, snapshot
from projections.audit_ranges import default_workers
from projections.audit_read import AuditFilter, export_csv
from projections.audit_verify import verify
from projections.feed import from_micros
from projections.runner import rebuild
from projections.service import build_projections

TARGET = 200_000


def read_and_hash(recorder: object, page: int = 5000) -> int:
    count = after = 0
    while True:
        rows = recorder.log_with_times(after, page)  # type: ignore[attr-defined]
        for r in rows:
            hashlib.sha256(r[4]).hexdigest()
        count += len(rows)
        if len(rows) < page:
            return count
        after = rows[-1][0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--projects", type=int, default=2000)
    parser.add_argument("--costs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--store-url", default=None,
                        help="event and projection store, e.g. postgresql://pmo:pmo@"
                             "127.0.0.1:5432/pmo?schema=bench (default: SQLite files)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="keep the store here; a store already there is measured as "
                             "it is (no new events)")
    args, _ = parser.parse_known_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        urls = {} if args.store_url is None else {"event_store_url": args.store_url,
                                                  "projection_store_url": args.store_url}
        settings = Settings(data_dir=args.data_dir or Path(tmp), _env_file=None, **urls)
        app = build_application(settings)
        if not app.recorder.max_notification_id():
            load(app, history(args.projects, args.costs))
        events = app.recorder.max_notification_id() or 0
        service = build_projections(settings)
        if service.audit.count() != events:
            rebuild(app, service, ["audit"])
        workers = default_workers()
        base, one, ours = [], [], []
        for _ in range(args.repeats):
            # The floor and both verifies in turn, so that each repeat sees the same load.
            t = time.perf_counter()
            read_and_hash(app.recorder)
            base.append(events / (time.perf_counter() - t))
            t = time.perf_counter()
            result = verify(service.db, app, workers=1)
            one.append(events / (time.perf_counter() - t))
            assert result["ok"] and result["checked"] == events, result
            t = time.perf_counter()
            result = verify(service.db, app)
            ours.append(events / (time.perf_counter() - t))
            assert result["ok"] and result["checked"] == events, result
        t = time.perf_counter()
        anchors.store_head(app)
        anchor_s = time.perf_counter() - t
        t = time.perf_counter()
        size = sum(len(chunk) for chunk in export_csv(service.db, AuditFilter()))
        export_rate = events / (time.perf_counter() - t)
        middle = app.recorder.log_with_times(events // 2, 1)[0][5]  # type: ignore[attr-defined]
        at = from_micros(middle).astimezone(UTC)
        t = time.perf_counter()
        snapshot.write(app, at, Path(tmp) / "evidence.sqlite")
        snapshot_s = time.perf_counter() - t
        service.close()
        b, s1, o = statistics.median(base), statistics.median(one), statistics.median(ours)
        print(f"{events} events on {settings.event_store.kind}, {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"floor, one process: read log+times and SHA-256: {b:,.0f} events/s")
        print(f"verify, one process:               {s1:,.0f} events/s (median of "
              f"{args.repeats}), ratio to the floor {s1 / b:.2f}")
        print(f"verify, {workers} processes:               {o:,.0f} events/s (median of "
              f"{args.repeats}), ratio to the floor {o / b:.2f}; target >= {TARGET:,}: "
              f"{'met' if o >= TARGET else 'NOT met'}")
        print(f"anchor (chain from the store):     {anchor_s:.2f} s")
        print(f"snapshot as of the middle:         {snapshot_s:.2f} s ({events // 2} events, "
              f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
        print(f"export csv:                        {export_rate:,.0f} events/s, "
              f"{size / 1e6:.1f} MB")
        return 0 if o >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
