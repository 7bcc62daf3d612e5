"""What every worker process shares: logging, and a clean stop on SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType


def configure_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("PMO_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)  # reconnect chatter


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT: the loop finishes its batch, then exits."""
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("signal %d: stopping after this batch", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop
