"""Reads at a valid time (CONTRACT section 13): a project with 1,000 events, and a portfolio
of 10,000 projects, each at several (valid_at, as_of) pairs.

Targets: one project p99 <= 10 ms; the portfolio <= 250 ms (first read, KPI memo cold,
and median). Baselines from the same run: the as-of read of the same aggregate at the
same recording time (``projections.asof``). The events' ``time`` spreads over 2026 (one
hour apart), so every valid time cuts through the middle of the histories. All reads
bypass the view cache. Run: ``python -m bench.bench_validtime``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.bench_asof import long_project, many_projects, pct, timings
from domain import commands as c
from domain.application import PmoApplication
from domain.values import Envelope
from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections import asof, valid_read
from projections.runner import EmbeddedRunner
from projections.service import build_projections

DAY0 = datetime(2026, 1, 1, tzinfo=UTC)
BATCH = 1000


def load_spread(app: PmoApplication, commands: Iterator[c.Command], source: str,
                step: timedelta) -> int:
    """Like ``bench_replay.load``, but the n-th event's ``time`` is DAY0 + n * step."""
    items: list[tuple[Envelope, c.Command]] = []
    for n, command in enumerate(commands):
        items.append((Envelope(source, f"e{n}", "bench", DAY0 + n * step), command))
        if len(items) == BATCH:
            app.record(items)
            items = []
    if items:
        app.record(items)
    return n + 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--projects", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=200)
    args, _ = parser.parse_known_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        app = build_application(settings)
        service = build_projections(settings)
        long_n = load_spread(app, long_project(args.events), "bench-long", timedelta(hours=1))
        began = time.perf_counter()
        half = args.projects * 5 // 2  # many_projects: 5 events a project
        commands = many_projects(args.projects)
        first = [next(commands) for _ in range(half)]
        load_spread(app, iter(first), "bench-many-1", timedelta(minutes=1))
        middle = datetime.now(UTC)  # a recording time with half the portfolio known
        rest = list(commands)
        items = [(Envelope("bench-many-2", f"e{n}", "bench",
                           DAY0 + (half + n) * timedelta(minutes=1)), cmd)
                 for n, cmd in enumerate(rest)]
        for start in range(0, len(items), BATCH):
            app.record(items[start:start + BATCH])
        print(f"generated {app.recorder.max_notification_id()} events "
              f"({args.projects} projects in {time.perf_counter() - began:.1f}s)")
        EmbeddedRunner(app, service, batch_size=5000).catch_up()
        now = datetime.now(UTC)

        # One project: valid times just before the 1,000th hour (99 events after the
        # last doc snapshot: the worst case) and mid-history; as known now.
        worst = DAY0 + (long_n - 2) * timedelta(hours=1) - timedelta(minutes=1)
        mid = DAY0 + (long_n // 2) * timedelta(hours=1) + timedelta(minutes=30)
        results = {}
        for label, valid in (("worst", worst), ("mid", mid)):
            view = valid_read.project(app, service.projects, "LONG", valid, now)
            assert view is not None
            results[label] = (view["version"], timings(
                lambda v=valid: valid_read.project(app, service.projects, "LONG", v, now),
                args.repeats))
        base = timings(lambda: asof.project(app, service.projects, "LONG", now), args.repeats)
        p99 = max(pct(t, .99) for _, t in results.values())
        for label, (version, t) in results.items():
            print(f"project at valid_at ({label}, version {version}) & as_of now: "
                  f"p50 {pct(t, .5):.2f} ms, p99 {pct(t, .99):.2f} ms")
        print(f"  target p99 <= 10 ms: {'met' if p99 <= 10 else 'NOT met'}; baseline as_of "
              f"alone: p50 {pct(base, .5):.2f} ms, p99 {pct(base, .99):.2f} ms")

        valid_mid = DAY0 + (half + half // 2) * timedelta(minutes=1)
        worst_ms = 0.0
        for label, valid, recorded in (("mid, now", valid_mid, now),
                                       ("mid, half recorded", valid_mid, middle),
                                       ("all, now", DAY0 + timedelta(days=3650), now)):
            service.projects.forget_kpis()
            cold = timings(lambda v=valid, r=recorded: valid_read.portfolio(
                app, service.projects, service.portfolios, "BIG", v, r), 1)[0]
            warm = statistics.median(timings(lambda v=valid, r=recorded: valid_read.portfolio(
                app, service.projects, service.portfolios, "BIG", v, r), 7))
            view = valid_read.portfolio(app, service.projects, service.portfolios, "BIG",
                                        valid, recorded)
            count = 0 if view is None else view["project_count"]
            worst_ms = max(worst_ms, cold, warm)
            print(f"portfolio at ({label}): {count} projects counted, first {cold:.1f} ms, "
                  f"median {warm:.1f} ms")
        service.projects.forget_kpis()
        base_p = statistics.median(timings(
            lambda: asof.portfolio(app, service.projects, "BIG", now, service.portfolios), 7))
        print(f"  target <= 250 ms: {'met' if worst_ms <= 250 else 'NOT met'}; baseline "
              f"as_of alone: median {base_p:.1f} ms")
        service.close()
        app.close()
        return 0 if p99 <= 10 and worst_ms <= 250 else 1


if __name__ == "__main__":
    raise SystemExit(main())
