"""As-of reads: a project with 1,000 events, and a portfolio of 10,000 projects.

Targets: project as of T, p99 <= 10 ms; portfolio as of T <= 250 ms. Baselines,
measured in the same run: the library loading the same aggregate at the same
version (``get_by_key(..., as_of=T)``, which uses snapshots) for the project,
and the live portfolio view built uncached from the current rows for the
portfolio. Both as-of figures bypass the view cache. Run:
``python -m bench.bench_asof``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.bench_replay import load
from domain import commands as c
from domain.project import Project
from domain.values import Colour, PmoType
from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections import asof
from projections.runner import EmbeddedRunner
from projections.service import build_projections


def long_project(events: int) -> Iterator[c.Command]:
    yield c.OpenPortfolio("P", "Bench", PmoType.SUPPORTIVE, "EUR", Decimal("1e12"), "owner")
    yield c.ProposeProject("LONG", "P", "Long", "sponsor", Decimal("1000000"), date(2026, 1, 1),
                           date(2026, 12, 31))
    yield c.ApproveProject("LONG", Decimal("1000000"), "cfo")
    yield c.StartProject("LONG", date(2026, 1, 2))
    for i in range(events - 3):
        if i % 10 == 9:
            yield c.ReportStatus("LONG", Colour.GREEN, Colour.GREEN, Colour.GREEN, Colour.GREEN,
                                 Decimal(i * 100 // events), "ok")
        else:
            yield c.RecordCost("LONG", Decimal("10.25"), "EUR", date(2026, 2, 1), "labour",
                               f"r{i}")


def many_projects(projects: int) -> Iterator[c.Command]:
    yield c.OpenPortfolio("BIG", "Big", PmoType.CONTROLLING, "EUR", Decimal("1e12"), "owner")
    for p in range(projects):
        key = f"B{p}"
        yield c.ProposeProject(key, "BIG", f"Project {p}", "sponsor", Decimal("5000"),
                               date(2026, 1, 1), date(2026, 12, 31))
        yield c.ApproveProject(key, Decimal("5000"), "cfo")
        yield c.StartProject(key, date(2026, 1, 5))
        yield c.RecordCost(key, Decimal("1200"), "EUR", date(2026, 2, 1), "labour", "r")
        yield c.ReportStatus(key, Colour.GREEN, Colour.GREEN, Colour.AMBER, Colour.GREEN,
                             Decimal(30), "ok")


def timings(fn: Callable[[], Any], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        out.append((time.perf_counter() - began) * 1000)
    return sorted(out)


def pct(values: list[float], q: float) -> float:
    return values[min(int(len(values) * q), len(values) - 1)]


def main(argv: list[str] | None = None) -> int:
    """0 when every target is met, else 1 (what ``python -m bench`` reports)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--projects", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=200)
    args, _ = parser.parse_known_args(argv)  # ``python -m bench`` may carry its own
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        app = build_application(settings)
        service = build_projections(settings)
        load(app, long_project(args.events), source="bench-long")
        middle = datetime.now(UTC)
        began = time.perf_counter()
        load(app, many_projects(args.projects), source="bench-many")
        print(f"generated {app.recorder.max_notification_id()} events "
              f"({args.projects} projects in {time.perf_counter() - began:.1f}s)")
        EmbeddedRunner(app, service, batch_size=5000).catch_up()
        at = datetime.now(UTC)
        # The worst case: 99 events after the latest doc snapshot (taken every 100 versions).
        long_id = Project.id_for("LONG")
        before = app.recorder.select_events(long_id, lte=args.events - 1, desc=True, limit=1)[0]
        long_at = app.mapper.to_domain_event(before).timestamp
        version = app.ledger.version_at(long_id, long_at)
        ours = timings(lambda: asof.project(app, service.projects, "LONG", long_at),
                       args.repeats)
        base = timings(lambda: app.get_by_key(Project, "LONG", as_of=long_at), args.repeats)
        print(f"project as of T at version {version}: p50 {pct(ours, .5):.2f} ms, "
              f"p99 {pct(ours, .99):.2f} ms (target p99 <= 10 ms: "
              f"{'met' if pct(ours, .99) <= 10 else 'NOT met'})")
        print(f"  baseline get_by_key(as_of) with snapshots: p50 {pct(base, .5):.2f} ms, "
              f"p99 {pct(base, .99):.2f} ms; ratio p50 ours/baseline "
              f"{pct(ours, .5) / pct(base, .5):.2f}")
        repeats = 7
        view = asof.portfolio(app, service.projects, "BIG", at, service.portfolios)
        assert view is not None and view["project_count"] == args.projects
        early = asof.portfolio(app, service.projects, "BIG", middle, service.portfolios)
        assert early is None  # the portfolio was opened after ``middle``
        service.projects.forget_kpis()
        cold = timings(
            lambda: asof.portfolio(app, service.projects, "BIG", at, service.portfolios), 1)[0]
        ours_p = timings(
            lambda: asof.portfolio(app, service.projects, "BIG", at, service.portfolios), repeats)
        doc = service.portfolios.get("BIG")
        assert doc is not None
        live = timings(lambda: service._portfolio(doc), repeats)
        m_ours, m_live = statistics.median(ours_p), statistics.median(live)
        print(f"portfolio of {args.projects} projects as of T: median {m_ours:.1f} ms, first "
              f"(KPI memo cold) {cold:.1f} ms (target <= 250 ms: "
              f"{'met' if max(m_ours, cold) <= 250 else 'NOT met'})")
        print(f"  baseline live view built uncached: median {m_live:.1f} ms; ratio "
              f"{m_ours / m_live:.2f}")
        service.close()
        return 0 if pct(ours, .99) <= 10 and max(m_ours, cold) <= 250 else 1


if __name__ == "__main__":
    raise SystemExit(main())
