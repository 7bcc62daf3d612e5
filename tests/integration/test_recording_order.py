"""Recording times rise with positions: ``as_of=T`` counts a prefix of the store.

A message that causes events on two aggregates (an assignment: the project's and the
manager's) is stored in one transaction; if the later-stored event were stamped first, an
``as_of`` between the two stamps would show the manager holding a project that has no
manager yet, a state the store never had (found by the newcomer run, on the demo: 73 of
2,462 positions recorded before the position ahead of them)."""

from __future__ import annotations

import sqlite3
from itertools import pairwise
from pathlib import Path

from pmo.demo import load
from pmo.demo_data import generate
from pmo.settings import Settings


def test_recording_times_never_run_backwards_along_the_store(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]
    counts = load(settings, generate(7, 20))
    assert counts["accepted"] > 0 and set(counts) == {"accepted"}
    with sqlite3.connect(tmp_path / "data" / "events.sqlite") as conn:
        times = [r[0] for r in conn.execute(
            "SELECT recorded_at FROM event_times ORDER BY position")]
        assigned = conn.execute("SELECT COUNT(*) FROM stored_events "
                                "WHERE topic = 'pmo.manager.project_assigned'").fetchone()[0]
    assert assigned > 0  # the case that ran backwards is in the store
    backwards = [n for n, (a, b) in enumerate(pairwise(times), start=2)
                 if b < a]
    assert not backwards, f"positions recorded before the one ahead of them: {backwards[:10]}"
