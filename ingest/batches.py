"""The items of a JSON batch as their own bytes, for the items JSON cannot carry whole.

``orjson`` reads a whole batch at once, and writes a refused item back for the
rejections log. Both can fail on one item while the others are fine: a NUL byte
or a 2,000-level nesting makes the whole array unreadable, and orjson writes at
most 254 levels although it reads 1,024. Rather than lose the batch, its items
are cut out of the original bytes by their brackets (strings skipped whole), so
each is decided, or refused with its exact original bytes, on its own. Only this
slow path, taken on such a failure, scans the bytes in Python.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

# A JSON string (escapes included), one structural byte, or a quote that opens a
# string never closed.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]|"', re.DOTALL)
_SPACE = b" \t\r\n"


def split_array(body: bytes, max_items: int | None = None) -> list[bytes] | None:
    """The bytes of each item of the JSON array ``body``, or None if it is not an array
    whose brackets balance (then no item can be told from the next). With ``max_items``,
    it stops at the item after that many: the caller refuses the batch anyway."""
    start = len(body) - len(body.lstrip(_SPACE))
    if body[start:start + 1] != b"[":
        return None
    items: list[bytes] = []
    depth = 0
    item_start = start + 1
    end = None
    for token in _TOKENS.finditer(body, start):
        text = token.group()
        char = text[:1]
        if text == b'"':
            return None  # an unterminated string: where items end is unknown
        if char in b"[{":
            depth += 1
        elif char in b"]}":
            depth -= 1
            if depth == 0:
                end = token.start()
                break
        elif char == b"," and depth == 1:
            items.append(body[item_start:token.start()].strip(_SPACE))
            item_start = token.end()
            if max_items is not None and len(items) > max_items:
                return items
    if end is None or body[end + 1:].strip(_SPACE):
        return None
    last = body[item_start:end].strip(_SPACE)
    if last or items:
        items.append(last)
    return items


class BatchBody:
    """The original bytes of a batch, cut into its items only when first needed."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._items: list[bytes] | None = None

    def item(self, index: int) -> bytes:
        if self._items is None:
            self._items = split_array(self._body) or []
        if index < len(self._items):
            return self._items[index]
        return self._body  # cannot happen for a body orjson read as an array; kept whole

    def writer(self, item: Any, index: int) -> Callable[[], bytes]:
        """A function giving item ``index`` as bytes: as orjson writes it, or, if it
        cannot, as it was received."""
        def write() -> bytes:
            try:
                return orjson.dumps(item)
            except TypeError:  # orjson.JSONEncodeError: too deep, or not writable
                return self.item(index)
        return write

