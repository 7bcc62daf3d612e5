"""Retry with backoff for transient broker trouble; anything else, or a long outage, is raised.

A worker that loses its broker keeps trying for ``DEFAULT_PATIENCE_S`` seconds
(the broker restarting, a leader moving) and then crashes loudly, so the process
supervisor sees it rather than a worker that silently does nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from kafka.errors import KafkaError

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
