"""A faster JSON transcoder that writes exactly what eventsourcing's JSONTranscoder reads.

One pass in Python turns every registered custom type (Decimal, datetime, date,
UUID, our enums) into the library's ``{"_type_", "_data_"}`` form, then orjson
writes the bytes. orjson alone would write enums, UUIDs and datetimes natively
(losing their types on the way back), and its ``default`` hook costs a Python
call per value; the pass avoids both. Decoding stays the library's own, so the
stored bytes remain readable without this class. A test checks byte equality.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Transcoding,
    UUIDAsHex,
)

from domain.values import DateAsISO

_PLAIN = frozenset({str, int, bool, type(None), float})



def _iso_datetime(obj: datetime) -> datetime | str:
    # orjson writes a naive or UTC datetime exactly as ``isoformat()`` does, in C and
    # 3x faster (every event holds two: ``timestamp`` and ``time``); other zones keep
    # ``isoformat()``, whose offsets orjson may spell differently.
    tz = obj.tzinfo
    return obj if tz is None or tz is UTC else obj.isoformat()


# Transcodings whose ``encode`` is known to give a str: their tag is built without
# calling ``encode`` (a Python frame per value) and without re-walking the str. A
# date is left for orjson, which writes it exactly as ``date.isoformat()``.
_DIRECT: dict[type[Transcoding], Callable[[Any], Any]] = {
    DatetimeAsISO: _iso_datetime,
    DecimalAsStr: Decimal.__str__,
    DateAsISO: lambda d: d,
    UUIDAsHex: lambda u: u.hex,
}


class FastJSONTranscoder(JSONTranscoder):
    def __init__(self) -> None:
        super().__init__()
        # type -> its tagged form; only for transcodings registered exactly as above
        self._leaves: dict[type, Callable[[Any], dict[str, Any]]] = {}

    def register(self, transcoding: Transcoding) -> None:
        super().register(transcoding)
        direct = _DIRECT.get(type(transcoding))
        if direct is None:
            self._leaves.pop(transcoding.type, None)  # a replaced transcoding: the slow path
            return
        name = transcoding.name
        self._leaves[transcoding.type] = lambda obj: {"_type_": name, "_data_": direct(obj)}

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(self._tagged(obj))

    def _tagged(self, obj: Any) -> Any:
        kind = type(obj)
        if kind in _PLAIN:
            return obj
        leaves = self._leaves
        # Plain values and leaves are handled inline: most values are one or the other,
        # and a call each is the cost.
        if kind is dict:
            return {k: v if (t := type(v)) in _PLAIN else
                    leaves[t](v) if t in leaves else self._tagged(v) for k, v in obj.items()}
        if kind is list or kind is tuple:
            return [v if (t := type(v)) in _PLAIN else
                    leaves[t](v) if t in leaves else self._tagged(v) for v in obj]
        leaf = leaves.get(kind)
        if leaf is not None:
            return leaf(obj)
        transcoding = self.types.get(kind)
        if transcoding is None:
            if isinstance(obj, (str, int, float)):
                return obj  # subclasses of plain types: the library writes them as plain too
            return self._encode_obj(obj)  # raises the library's "not registered" error
        return {"_type_": transcoding.name, "_data_": self._tagged(transcoding.encode(obj))}
