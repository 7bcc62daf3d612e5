"""The chain's receipt check over a hand-written store log: groups across pages and cuts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import orjson

from domain.application import Key, PmoApplication
from projections.audit import GENESIS, digest, link
from projections.chain import StoreChain

OID = "3f2a5c1e9b7d4e6f8a0b1c2d3e4f5a6b"


class FakeLog:
    """Events 1..n, each naming a message; receipts as given (message -> position)."""

    def __init__(self, messages: list[str], receipts: dict[str, int]) -> None:
        self.rows: list[tuple[Any, ...]] = [(n, OID, n, "pmo.project.x", orjson.dumps(
            {"source": "urn:t", "event_id": m}), 1_000 + n)
            for n, m in enumerate(messages, 1)]
        self.receipts = {("urn:t", m): p for m, p in receipts.items()}

    def log_with_times(self, after: int, limit: int) -> list[Any]:
        return [r for r in self.rows if r[0] > after][:limit]

    def positions_of(self, keys: Iterable[Key]) -> dict[Key, int]:
        return {k: self.receipts[k] for k in keys if k in self.receipts}

    def max_notification_id(self) -> int:
        return len(self.rows)


class FakeMapper:
    cipher = None
    compressor = None


class FakeApp:
    def __init__(self, log: FakeLog) -> None:
        self.recorder = log
        self.mapper = FakeMapper()


def run(messages: list[str], receipts: dict[str, int], *, page: int = 2,
        upto: int | None = None) -> Any:
    chain = StoreChain(cast(PmoApplication, FakeApp(FakeLog(messages, receipts))), upto,
                       page=page)
    links = list(chain)
    assert [lk.position for lk in links] == list(range(1, len(links) + 1))
    return chain.receipt_break


def test_a_message_whose_events_span_pages_finds_its_receipt_in_the_later_page() -> None:
    assert run(["a", "b", "b", "b", "c"], {"a": 1, "b": 4, "c": 5}) is None


def test_a_receipt_outside_its_message_is_found_at_the_message_first_event() -> None:
    broken = run(["a", "b", "b", "c"], {"a": 1, "b": 4, "c": 4})
    assert broken is not None and (broken.position, broken.what) == (2, "receipt")


def test_a_missing_receipt_is_found_even_for_the_last_message() -> None:
    broken = run(["a", "b", "c"], {"a": 1, "b": 2})
    assert broken is not None and broken.position == 3


def test_a_copied_body_elsewhere_breaks_its_own_group() -> None:
    broken = run(["a", "b", "c", "a"], {"a": 1, "b": 2, "c": 3})
    assert broken is not None and broken.position == 4


def test_a_message_cut_by_upto_may_have_its_receipt_after_the_cut() -> None:
    assert run(["a", "b", "b", "b"], {"a": 1, "b": 4}, upto=3) is None


def test_the_service_own_actions_need_no_receipt_but_inbound_messages_do() -> None:
    log = FakeLog(["a", "admin-1", "b"], {"a": 1, "b": 3})
    log.rows[1] = (2, OID, 2, "pmo.ledger.quarantine_evicted", *log.rows[1][4:])
    chain = StoreChain(cast(PmoApplication, FakeApp(log)), page=2)
    assert len(list(chain)) == 3 and chain.receipt_break is None
    log.rows[1] = (2, OID, 2, "pmo.project.approved", *log.rows[1][4:])
    chain = StoreChain(cast(PmoApplication, FakeApp(log)), page=2)
    list(chain)
    assert chain.receipt_break is not None and chain.receipt_break.position == 2


def test_the_chain_recomputed_from_the_log_follows_the_documented_digest() -> None:
    # StoreChain inlines audit.digest and audit.link: both must give the same hashes,
    # with and without a recording time or a receipt, and for a body that is no JSON.
    log = FakeLog(["a", "b", "c"], {"a": 1, "b": 2, "c": 3})
    log.rows[1] = (2, OID, 2, "pmo.project.x", log.rows[1][4], None)
    log.rows[2] = (3, OID, 3, "pmo.project.x", b"\xff not json", 1_003)
    prev = GENESIS
    for lk, row in zip(StoreChain(cast(PmoApplication, FakeApp(log)), page=2), log.rows,
                       strict=True):
        payload = orjson.loads(row[4]) if row[0] < 3 else {}
        expected = digest(row[0], row[1], row[2], row[3], row[5], payload.get("source"),
                          payload.get("event_id"), row[4])
        prev = link(prev, expected)
        assert (lk.digest, lk.hash) == (expected, prev)
