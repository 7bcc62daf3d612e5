"""The view cache: ready JSON bytes by key, bounded in bytes and in entries.

Keys are unbounded in number (every distinct ``q``, cursor or ``as_of`` instant
makes one), so the cache holds at most ``max_bytes`` of bodies and keys and
``max_entries`` entries, evicting the oldest insertions first. Reads take no
lock (a dict lookup is atomic in CPython); inserts and evictions take one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

# What an entry costs beyond its key and body (the tuple, the dict slot, the bytes header),
# so that a flood of tiny or empty bodies is bounded too.
ENTRY_OVERHEAD = 200

Entry = tuple[tuple[Any, ...], bytes | None]


class ViewCache:
    def __init__(self, max_bytes: int, max_entries: int = 20_000) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.bytes = 0
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Entry | None:
        return self._entries.get(key)

    def put(self, key: str, token: tuple[Any, ...], body: bytes | None) -> None:
        cost = _cost(key, body)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.bytes -= _cost(key, old[1])
            if cost > self.max_bytes:
                return  # larger than the whole cache: served, never kept
            while self._entries and (self.bytes + cost > self.max_bytes
                                     or len(self._entries) >= self.max_entries):
                evicted, entry = self._entries.popitem(last=False)
                self.bytes -= _cost(evicted, entry[1])
            self._entries[key] = (token, body)
            self.bytes += cost

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0


def _cost(key: str, body: bytes | None) -> int:
    return ENTRY_OVERHEAD + len(key) + (len(body) if body is not None else 0)
