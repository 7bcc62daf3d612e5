"""Replay throughput: a full rebuild of every projection from the event store.

Baseline, measured in the same run: reading the notification log and decoding
every event with the application's mapper (what any consumer must at least do).
Target: >= 100,000 events/s for the rebuild. Run: ``python -m bench.bench_replay``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from domain import commands as c
from domain.application import PmoApplication
from domain.values import Colour, Envelope, PmoType
from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections.runner import rebuild
from projections.service import build_projections

BATCH = 500


def history(projects: int, costs: int) -> Iterator[c.Command]:
    """A portfolio, a manager pool and ``projects`` projects with costs and status reports."""
    yield c.OpenPortfolio("P", "Bench", PmoType.CONTROLLING, "EUR", Decimal("1e12"), "owner")
    yield c.SetObjective("P", "O1", "Grow", Decimal("0.6"))
    for m in range(max(projects // 10, 1)):
        yield c.RegisterManager(f"M{m}", f"Manager {m}", 20)
    for p in range(projects):
        key = f"X{p}"
        yield c.ProposeProject(key, "P", f"Project {p}", "sponsor", Decimal("100000"),
                               date(2026, 1, 1), date(2026, 12, 31), priority=p % 5 + 1)
        yield c.ApproveProject(key, Decimal("90000"), "cfo")
        yield c.AssignManager(key, f"M{p // 10}")
        yield c.StartProject(key, date(2026, 1, 15))
        for i in range(costs):
            yield c.RecordCost(key, Decimal("125.50"), "EUR", date(2026, 2, 1), "labour", f"r{i}")
            if i % 5 == 4:
                yield c.ReportStatus(key, Colour.GREEN, Colour.GREEN, Colour.AMBER, Colour.GREEN,
                                     Decimal(min(100, i * 2)), "on track")


def load(app: PmoApplication, commands: Iterator[c.Command], source: str = "bench") -> int:
    start = datetime.now(UTC)
    items: list[tuple[Envelope, c.Command]] = []
    stored = 0
    for n, command in enumerate(commands):
        items.append((Envelope(source, f"e{n}", "bench", start + timedelta(microseconds=n)),
                      command))
        if len(items) == BATCH:
            stored += sum(o.status == "accepted" for o in app.record(items))
            items = []
    if items:
        stored += sum(o.status == "accepted" for o in app.record(items))
    return stored


def read_and_decode(app: PmoApplication) -> int:
    count = start = 0
    while True:
        batch = app.recorder.select_notifications(start, 2000, inclusive_of_start=False)
        for n in batch:
            app.mapper.to_domain_event(n)
        count += len(batch)
        if len(batch) < 2000:
            return count
        start = batch[-1].id


def replay(settings: Settings, app: PmoApplication, run: int,
           store_url: str | None = None) -> tuple[int, float, float]:
    """(events in the trail, seconds in place, seconds blue/green) on one projection store.

    In place (clear, replay, build the deferred indexes) into an empty store, then
    blue/green (``pmo replay``'s way: built beside the now full live views, swapped in)."""
    projection_settings = settings.model_copy(update={
        "projection_store_url": store_url or
        f"sqlite:///{settings.data_dir}/projections-{run}.sqlite"})
    service = build_projections(projection_settings)
    began = time.perf_counter()
    rebuild(app, service, beside=False)
    in_place = time.perf_counter() - began
    began = time.perf_counter()
    rebuild(app, service)
    beside = time.perf_counter() - began
    total = service.audit.count()
    service.close()
    return total, in_place, beside


def main(argv: list[str] | None = None) -> int:
    """0 when every target is met, else 1 (what ``python -m bench`` reports)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--projects", type=int, default=2000)
    parser.add_argument("--costs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--projection-store-url", default=None,
                        help="e.g. postgresql://pmo:pmo@127.0.0.1:5432/pmo?schema=bench "
                             "(default: a fresh SQLite file per repeat)")
    args, _ = parser.parse_known_args(argv)  # ``python -m bench`` may carry its own
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        app = build_application(settings)
        began = time.perf_counter()
        load(app, history(args.projects, args.costs))
        events = app.recorder.max_notification_id() or 0
        print(f"generated {events} events in {time.perf_counter() - began:.1f}s")
        base, ours, green = [], [], []
        for run in range(args.repeats):
            t = time.perf_counter()
            read_and_decode(app)
            base.append(events / (time.perf_counter() - t))
            total, elapsed, beside = replay(settings, app, run, args.projection_store_url)
            assert total == events, (total, events)
            ours.append(events / elapsed)
            green.append(events / beside)
        b, o = statistics.median(base), statistics.median(ours)
        print(f"baseline read+decode notification log: {b:,.0f} events/s (median of "
              f"{args.repeats})")
        print(f"replay of all 5 projections in place:  {o:,.0f} events/s (median of "
              f"{args.repeats})")
        g = statistics.median(green)
        print(f"blue/green rebuild of all 5 (swap incl.): {g:,.0f} events/s (median of "
              f"{args.repeats}; {g / o:.2f}x the in-place replay)")
        print(f"ratio replay/baseline: {o / b:.2f}  target >= 100,000 events/s: "
              f"{'met' if o >= 100_000 else 'NOT met'}")
        return 0 if o >= 100_000 else 1


if __name__ == "__main__":
    raise SystemExit(main())
