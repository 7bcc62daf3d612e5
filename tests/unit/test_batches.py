"""``ingest.batches.split_array``: a batch's items cut out of its bytes, as orjson wrote them."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.batches import BatchBody, split_array

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8)
    | st.sampled_from(['"', "\\", "[", "]", "{", "}", ",", '\\"]', "\x00"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=4),
    max_leaves=20)


@settings(max_examples=300, derandomize=True, database=None)
@given(st.lists(JSON, max_size=6), st.sampled_from([b"", b" ", b"\n\t "]))
def test_split_array_gives_each_item_as_written(items: list[Any], space: bytes) -> None:
    body = b"[" + space + (b"," + space).join(orjson.dumps(i) for i in items) + space + b"]"
    assert split_array(space + body + space) == [orjson.dumps(i) for i in items]


def test_split_array_refuses_what_is_not_one_balanced_array() -> None:
    for body in (b'{"a": 1}', b"[1, [2]", b"[1] [2]", b'["]', b"", b"0"):
        assert split_array(body) is None, body


def test_split_array_stops_after_the_item_over_the_limit() -> None:
    assert split_array(b"[" + b",".join([b"0"] * 1000) + b"]", max_items=10) == [b"0"] * 11


def test_an_item_too_deep_to_write_back_is_kept_as_received() -> None:
    deep = b"[" * 300 + b"1" + b"]" * 300
    body = b'[{"a": 1}, ' + deep + b"]"
    document = orjson.loads(body)
    batch = BatchBody(body)
    assert batch.writer(document[0], 0)() == b'{"a":1}'
    assert batch.writer(document[1], 1)() == deep
