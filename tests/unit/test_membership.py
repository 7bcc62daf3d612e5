"""When a consumer-group member counts as stuck (see consumers.membership)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from consumers.membership import Membership


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def member(state: str) -> SimpleNamespace:
    return SimpleNamespace(_coordinator=SimpleNamespace(state=state))


def test_a_member_out_of_the_stable_state_past_the_limit_is_stuck() -> None:
    clock = Clock()
    watch = Membership(limit_s=60, clock=clock)
    rebalancing = member("<rebalancing>")
    assert not watch.stuck(rebalancing)  # the clock starts now
    clock.now = 60.0
    assert not watch.stuck(rebalancing)  # a long rebalance is not yet a stuck one
    clock.now = 60.5
    assert watch.stuck(rebalancing)


def test_being_stable_in_between_starts_the_time_again() -> None:
    clock = Clock()
    watch = Membership(limit_s=60, clock=clock)
    assert not watch.stuck(member("<unjoined>"))
    clock.now = 50.0
    assert not watch.stuck(member("<stable>"))
    clock.now = 100.0
    assert not watch.stuck(member("<rebalancing>"))  # unstable again only since 100
    clock.now = 159.0
    assert not watch.stuck(member("<rebalancing>"))
    clock.now = 161.0
    assert watch.stuck(member("<rebalancing>"))
    watch.reset()  # a new member replaced it
    assert not watch.stuck(member("<unjoined>"))


def test_a_consumer_without_the_expected_internals_is_never_reported() -> None:
    watch = Membership(limit_s=0, clock=Clock())
    assert not watch.stuck(object())
    assert not watch.stuck(object())


class FakeMember:
    def __init__(self, state: str, fails_to_close: bool = False) -> None:
        self._coordinator = SimpleNamespace(state=state)
        self.closed = False
        self._fails = fails_to_close

    def close(self, autocommit: bool = True, timeout_ms: int | None = None) -> None:
        self.closed = True
        if self._fails:
            raise RuntimeError("UnknownMemberIdError")


def test_a_stuck_member_is_closed_and_replaced_and_a_healthy_one_kept() -> None:
    clock = Clock()
    watch = Membership(limit_s=10, clock=clock)
    healthy = FakeMember("<stable>")
    assert watch.replace_if_stuck(healthy, lambda: FakeMember("<unjoined>"), "audit") is healthy
    stuck = FakeMember("<rebalancing>", fails_to_close=True)  # leaving fails: still replaced
    assert watch.replace_if_stuck(stuck, lambda: FakeMember("<unjoined>"), "audit") is stuck
    clock.now = 11.0
    fresh = watch.replace_if_stuck(stuck, lambda: FakeMember("<unjoined>"), "audit")
    assert fresh is not stuck and stuck.closed and not fresh.closed
    clock.now = 15.0
    assert watch.replace_if_stuck(fresh, lambda: FakeMember("<unjoined>"), "audit") is fresh


def test_a_consumer_without_the_private_state_is_reported_once(
        caplog: pytest.LogCaptureFixture) -> None:
    watch = Membership(limit_s=60, clock=Clock())
    with caplog.at_level(logging.WARNING, logger="consumers.membership"):
        assert not watch.stuck(SimpleNamespace())
        assert not watch.stuck(SimpleNamespace())
    warnings = [r for r in caplog.records if "will NOT be replaced" in r.getMessage()]
    assert len(warnings) == 1
    assert not watch.readable(SimpleNamespace())
    assert watch.readable(member("<stable>"))
