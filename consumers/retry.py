"""Retry with backoff for transient broker trouble; anything else, or a long outage, is raised.

A worker that loses its broker keeps trying for ``DEFAULT_PATIENCE_S`` seconds
(the broker restarting, a leader moving) and then crashes loudly, so the process
supervisor sees it rather than a worker that silently does nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError

T = TypeVar("T")
log = logging.getLogger(__name__)

DEFAULT_PATIENCE_S = 300.0


def transient(error: BaseException) -> bool:
    """Kafka marks the errors worth retrying; a refused connection is one too."""
    return (isinstance(error, KafkaError) and error.retriable) or isinstance(
        error, ConnectionError)


def retrying(action: Callable[[], T], *, what: str,
             patience_s: float = DEFAULT_PATIENCE_S) -> T:
    deadline = time.monotonic() + patience_s
    delay = 0.1
    while True:
        try:
            return action()
        except Exception as e:
            if not transient(e) or time.monotonic() + delay > deadline:
                raise
            log.warning("%s failed (%s); retrying in %.1fs", what, e, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def connected(factory: Callable[[], T], *, what: str) -> T:
    """A Kafka client made once the broker answers. kafka-python's constructors bootstrap
    and raise a (retriable) timeout when no broker answers in time: a worker started
    before its broker, or while it restarts, waits for it like any other outage instead
    of dying at start."""
    return retrying(factory, what=f"connecting {what} to the broker")


def commit(consumer: Any, offsets: Any = None) -> bool:
    """Commit offsets of work that is already durable; False if the group rebalanced.

    A rebalance while the batch was being processed makes the commit fail; the
    partition's next owner then reads the batch again, which every worker here
    makes harmless (duplicates are recognised), so this is reported, not raised.
    """
    try:
        retrying(lambda: consumer.commit(offsets), what="committing offsets")
    except (CommitFailedError, RebalanceInProgressError) as e:
        log.warning("offsets of a finished batch not committed (%s); it will be read again", e)
        return False
    return True
