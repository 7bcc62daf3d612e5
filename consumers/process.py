"""What every worker process shares: logging, and a clean stop on SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from pmo.logs import configure
from pmo.settings import Settings


def configure_logging(settings: Settings | None = None) -> None:
    """The one logging setup (``pmo.logs``), from ``PMO_LOG_LEVEL`` and ``PMO_LOG_FORMAT``."""
    configure(settings if settings is not None else Settings())


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT: the loop finishes its batch, then exits."""
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("signal %d: stopping after this batch", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop
