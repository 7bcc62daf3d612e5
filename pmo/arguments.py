"""Argument types shared by the ``pmo`` subcommands: a bad value is a usage error
(exit 2 with the option named), never a server that binds elsewhere or a silent default."""

from __future__ import annotations

import argparse
import re
from urllib.parse import urlsplit

PORT_MAX = 65_535
_INTEGER = re.compile(r"-?[0-9]{1,18}")


def port(text: str) -> int:
    """A TCP port, 1..65535 (0 would ask the system for any port, which no one could find)."""
    value = _integer(text)
    if not 1 <= value <= PORT_MAX:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1..{PORT_MAX})")
    return value


def positive(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _integer(text: str) -> int:
    # ASCII digits only: int() also takes " 12 ", "1_000" and other scripts' digits.
    if not _INTEGER.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(text)


def api_url(text: str) -> str:
    """The base URL of a pmo-ledger service: http or https with a host."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http(s) URL with a host, e.g. http://127.0.0.1:8000")
    return text.rstrip("/")
