"""Replacing a consumer-group member that kafka-python has left stuck in a rebalance.

Seen with kafka-python 3.0.12, in the test that kills one of two ``pmo consume``
processes (about 1 run in 4 with the CPU busy): one member's ``audit`` consumer stayed
in the rebalancing state for good, heartbeats off, still fetching the partitions of
its old assignment, while the coordinator had evicted it and handed every partition
to the other member; once that one was killed, nobody consumed the projection again.

kafka-python's public API does not show a member's state, so ``Membership`` reads
the coordinator's (private) ``state`` defensively: a member that has not been stable
for ``limit_s`` is reported stuck, and its owner closes it and joins afresh. That is
safe here because positions live in the projection store: the new member seeks to
them when it is assigned partitions. The limit is above the longest normal rebalance
(the rebalance timeout plus a session timeout), so a healthy member is never
replaced; a broker that is down makes the member rejoin every ``limit_s``, which is
harmless. Should a kafka-python release drop that attribute, the rule cannot work:
the first check logs a warning saying so (pyproject.toml also caps kafka-python below
its next major version).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)
C = TypeVar("C")

STABLE = "<stable>"  # kafka.structs.MemberState.STABLE
STUCK_AFTER_S = 45.0


class Membership:
    def __init__(self, limit_s: float = STUCK_AFTER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit_s = limit_s
        self._clock = clock
        self._unstable_since: float | None = None
        self._checked = False

    def readable(self, consumer: Any) -> bool:
        """Whether ``consumer`` shows the private state this rule reads; warns once if not."""
        state = getattr(getattr(consumer, "_coordinator", None), "state", None)
        if state is None and not self._checked:
            version = getattr(sys.modules.get("kafka"), "__version__", "?")
            log.warning("kafka-python %s has no KafkaConsumer._coordinator.state: a group "
                        "member stuck in a rebalance will NOT be replaced", version)
        self._checked = True
        return state is not None

    def stuck(self, consumer: Any) -> bool:
        """True once ``consumer`` has been out of the stable state for over ``limit_s``."""
        if not self._checked:
            self.readable(consumer)
        state = getattr(getattr(consumer, "_coordinator", None), "state", STABLE)
        if state == STABLE:
            self._unstable_since = None
            return False
        now = self._clock()
        if self._unstable_since is None:
            self._unstable_since = now
            return False
        return now - self._unstable_since > self.limit_s

    def reset(self) -> None:
        """A new member: its time starts again."""
        self._unstable_since = None

    def replace_if_stuck(self, consumer: C, rejoin: Callable[[], C], name: str) -> C:
        """``consumer``; or, once it is stuck, a new member from ``rejoin`` (it closed)."""
        if not self.stuck(consumer):
            return consumer
        log.warning("%s: the group member has not been stable for %.0f s; joining afresh",
                    name, self.limit_s)
        try:
            consumer.close(autocommit=False, timeout_ms=5000)  # type: ignore[attr-defined]
        except Exception:  # a stuck member may fail to leave; it is dropped anyway
            log.exception("%s: closing the stuck member failed", name)
        self.reset()
        return rejoin()
