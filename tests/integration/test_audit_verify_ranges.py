"""Verify cut into ranges (``projections.audit_ranges``) answers as the one pass does.

Each range starts its chain at the trail's hash and leaves the receipt groups at its
edges to be joined: these tests cut a real store into ranges of a few positions, so
that every kind of mutation lands at, just before and just after range edges, and
compare every answer (``broken_at``, ``what``, ``checked``, ``head_hash``) with the
one-pass answer. The last tests run the ranges in a real child process.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from projections import audit_ranges
from projections.audit_verify import verify
from projections.chain import StoreChain
from tests.integration.test_audit_evidence import MUTATIONS, Store, store  # noqa: F401

CHUNKS = (1, 2, 3, 7)


def one_pass(s: Store) -> dict[str, Any]:
    return verify(s.service.db, s.app, workers=1)


def test_ranges_give_the_one_pass_answer_on_an_intact_store(store: Store) -> None:  # noqa: F811
    expected = one_pass(store)
    head = store.app.recorder.max_notification_id()
    assert expected["ok"] is True and expected["checked"] == head
    for chunk in CHUNKS:
        assert verify(store.service.db, store.app, workers=1, chunk=chunk) == expected, chunk


def test_every_mutation_is_found_by_ranges_where_one_pass_finds_it(store: Store) -> None:  # noqa: F811
    rng = random.Random(11)
    head = store.app.recorder.max_notification_id()
    assert head is not None
    store.save()
    for n in range(60):
        kind = sorted(MUTATIONS)[n % len(MUTATIONS)]
        touched = MUTATIONS[kind](store, rng, head)
        expected = one_pass(store)
        assert expected["ok"] is False and expected["broken_at"] <= touched, (kind, expected)
        chunk = CHUNKS[n % len(CHUNKS)]
        assert verify(store.service.db, store.app, workers=1, chunk=chunk) == expected, (
            kind, chunk)
        store.restore()
    assert one_pass(store)["ok"] is True


def test_a_receipt_group_across_a_range_edge_is_judged_whole(store: Store) -> None:  # noqa: F811
    # A message whose events are two adjacent positions (an assignment changes a project
    # and a manager): every chunk size cuts between them somewhere, and with a chunk of
    # 1 its receipt is in one range and its other event in the next.
    links = list(StoreChain(store.app))
    pair = next(a for a, b in itertools.pairwise(links)
                if (a.source, a.event_id) == (b.source, b.event_id) and a.source)
    for chunk in CHUNKS:
        assert verify(store.service.db, store.app, workers=1, chunk=chunk)["ok"] is True
    store.save()
    for edit in ("DELETE FROM {receipts} WHERE source = ? AND event_id = ?",
                 "UPDATE {receipts} SET position = position + 2 WHERE source = ? AND "
                 "event_id = ?"):
        store.run((edit, (pair.source, pair.event_id)))
        expected = one_pass(store)
        assert (expected["broken_at"], expected["what"]) == (pair.position, "receipt")
        for chunk in CHUNKS:
            assert verify(store.service.db, store.app, workers=1, chunk=chunk) == expected
        store.restore()


@pytest.mark.parametrize("break_it", [False, True])
def test_a_child_process_verifies_ranges_too(store: Store, break_it: bool) -> None:  # noqa: F811
    if break_it:
        store.run(("UPDATE {events} SET topic = topic || '!' WHERE {pos} = ?",
                   (store.app.recorder.max_notification_id(),)))
    expected = one_pass(store)
    assert expected["ok"] is not break_it
    # Ranges of 3 positions shared with one child: the parent's progress callback sees
    # every position covered once.
    seen: list[int] = []
    result = verify(store.service.db, store.app, lambda done, _last: seen.append(done),
                    workers=2, chunk=3)
    assert result == expected
    assert seen == sorted(seen) and seen[-1] <= expected["store_head"]


def test_a_large_store_is_cut_into_ranges_of_about_equal_size() -> None:
    spans = audit_ranges.ranges(1_000_001, 2)
    assert spans[0][0] == 0 and spans[-1][1] == 1_000_001
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert len(spans) == 2 * audit_ranges.RANGES_PER_WORKER


def test_a_child_that_fails_leaves_its_ranges_to_the_parent(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    # Children that cannot open the store (an unknown persistence module) die before
    # their first answer: the parent verifies every range itself, with the same answer.
    start = audit_ranges._Child.start

    def broken_start(env: dict[str, str], url: Any, trail_head: int) -> Any:
        return start({**env, "PERSISTENCE_MODULE": "no.such.module"}, url, trail_head)

    monkeypatch.setattr(audit_ranges._Child, "start", staticmethod(broken_start))
    expected = one_pass(store)
    assert verify(store.service.db, store.app, workers=3, chunk=2) == expected


def test_a_verify_that_finds_the_pool_busy_runs_alone_with_the_same_answer(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    # A client polling the verify route must not multiply child processes: while one
    # verify holds the pool, another starts none.
    start = audit_ranges._Child.start
    started: list[Any] = []

    def counted(*args: Any) -> Any:
        started.append(args)
        return start(*args)

    expected = one_pass(store)
    monkeypatch.setattr(audit_ranges._Child, "start", staticmethod(counted))
    assert audit_ranges._POOL_FREE.acquire(blocking=False)
    try:
        assert verify(store.service.db, store.app, workers=2, chunk=3) == expected
    finally:
        audit_ranges._POOL_FREE.release()
    assert started == []
    assert verify(store.service.db, store.app, workers=2, chunk=3) == expected
    assert started  # free again: the next verify shares its ranges with a child
