"""Property: a watermark is the longest prefix of the log applied, in any order of arrival."""

from __future__ import annotations

from uuid import uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.feed import RecordedEvent
from projections.watermark import _decode, _encode, advance


def log_with_gaps(steps: list[int]) -> list[RecordedEvent]:
    """Events at increasing positions with gaps (PostgreSQL may skip ids), chained."""
    events, position, prev = [], 0, 0
    for step in steps:
        position += step
        events.append(RecordedEvent(position, uuid4(), 1, "pmo.project.proposed", b"{}",
                                    None, prev))
        prev = position
    return events


def prefix(log: list[RecordedEvent], applied: set[int]) -> int:
    """The highest position P with every event at or below P applied (0 for none)."""
    reached = 0
    for e in log:
        if e.position not in applied:
            break
        reached = e.position
    return reached


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(st.integers(1, 3), min_size=1, max_size=60), data=st.data())
def test_watermark_is_the_applied_prefix_whatever_the_order(steps: list[int],
                                                            data: st.DataObject) -> None:
    log = log_with_gaps(steps)
    partitions = data.draw(st.integers(1, 4), label="partitions")
    parts: list[list[RecordedEvent]] = [[] for _ in range(partitions)]
    for e in log:
        parts[data.draw(st.integers(0, partitions - 1))].append(e)
    offsets = [0] * partitions
    watermark, held, applied = 0, {}, set()
    while any(offsets[p] < len(parts[p]) for p in range(partitions)):
        p = data.draw(st.integers(0, partitions - 1), label="partition")
        start = offsets[p]
        if start and data.draw(st.booleans(), label="re-delivery"):
            start -= data.draw(st.integers(1, start))
        end = min(start + data.draw(st.integers(1, 8), label="batch"), len(parts[p]))
        batch = parts[p][start:end]
        offsets[p] = max(offsets[p], end)
        # Each batch goes through the stored form of the held pairs, as in the store.
        held = _decode(_encode(held))
        watermark = advance(watermark, held, batch)
        applied.update(e.position for e in batch)
        assert watermark == prefix(log, applied)
        assert all(v > watermark for v in held.values())
    assert watermark == log[-1].position
    assert held == {}


def test_the_largest_position_seen_is_not_the_watermark() -> None:
    log = log_with_gaps([1, 1, 1, 1])
    held: dict[int, int] = {}
    assert advance(0, held, [log[0], log[2], log[3]]) == 1
    assert held == {2: 3, 3: 4}
    assert advance(1, held, [log[1]]) == 4
    assert held == {}
