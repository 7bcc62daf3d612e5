"""One logging setup for every entry point (``pmo serve``, the workers, the runner's child).

Records go to stderr with a UTC timestamp, as text (``PMO_LOG_FORMAT=text``, the
default) or one JSON object per line (``json``, for log shippers); ``PMO_LOG_LEVEL``
sets the level. uvicorn's own loggers are routed through the same handler.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from pmo.settings import Settings

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Attributes every LogRecord has: anything else was passed with ``extra=`` and is kept.
# uvicorn's ``color_message`` is its message again with ANSI colour codes for a terminal:
# in a log line it is noise (escape codes, %-placeholders), so it is not kept either.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "color_message"}


class UtcFormatter(logging.Formatter):
    converter = time.gmtime  # type: ignore[assignment]  # typeshed sees a method
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """What was passed with ``extra=`` (a CloudEvent's ``source`` and ``event_id``...)."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class TextFormatter(UtcFormatter):
    """The text line, then each ``extra=`` field as ``key=value``, the value JSON-quoted:
    a source or id holding spaces or quotes cannot forge another field or line."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = extra_fields(record)
        if not fields:
            return line
        pairs = " ".join(f"{k}={json.dumps(v, default=str, ensure_ascii=False)}"
                         for k, v in fields.items())
        head, sep, rest = line.partition("\n")  # after the message, before a traceback
        return f"{head} {pairs}{sep}{rest}"


class JsonFormatter(UtcFormatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"time": self.formatTime(record), "level": record.levelname,
                                 "logger": record.name, "message": record.getMessage()}
        entry.update(extra_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure(settings: Settings) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if settings.log_format == "json"
                         else TextFormatter(TEXT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    logging.getLogger("kafka").setLevel(logging.WARNING)  # reconnect chatter
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
