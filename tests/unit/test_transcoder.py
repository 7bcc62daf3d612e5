"""The fast transcoder writes byte for byte what the library's transcoder writes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.values import Colour, PmoType, ProjectState, transcodings
from storage.transcoder import FastJSONTranscoder


def _registered(transcoder: JSONTranscoder) -> JSONTranscoder:
    for t in [UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), *transcodings()]:
        transcoder.register(t)
    return transcoder


IST = timezone(timedelta(hours=5, minutes=30))  # not UTC: the fast path must fall back
LIBRARY, FAST = _registered(JSONTranscoder()), _registered(FastJSONTranscoder())

leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.text(max_size=20),
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
    st.datetimes(timezones=st.sampled_from([None, UTC, IST])), st.dates(), st.uuids(),
    st.sampled_from([*Colour, *PmoType, *ProjectState]))
values = st.recursive(leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20)


@settings(deadline=None)  # CPU-starved CI machines must not turn slowness into failures
@given(st.dictionaries(st.text(max_size=10), values, max_size=8))
def test_fast_transcoder_bytes_equal_the_library_and_round_trip(state: dict[str, Any]) -> None:
    encoded = FAST.encode(state)
    assert encoded == LIBRARY.encode(state)
    assert LIBRARY.decode(encoded) == state


def test_event_like_state_keeps_its_types() -> None:
    state = {"timestamp": datetime.now(UTC), "amount": Decimal("1234.50"), "due": date(2026, 1, 2),
             "colour": Colour.AMBER, "id": uuid4(), "nested": {"s": ProjectState.ON_HOLD}}
    assert FAST.decode(FAST.encode(state)) == state


def test_unregistered_type_is_refused_as_by_the_library() -> None:
    with pytest.raises(TranscodingNotRegisteredError):
        FAST.encode({"x": object()})
