"""A dead letter always fits what the producer and the broker take (``consumers.deadletters.fit``),
whatever the original carried: a value, a key or headers near 1 MB."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.deadletters import DEAD_LETTER_MAX_BYTES, fit

BROKER_LIMIT = 1_048_588  # Kafka's default message.max.bytes (a record batch)
WIRE_FRAMING = 3  # a small header's two varints on the wire


def wire(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> int:
    return len(key or b"") + len(value) + sum(len(k) + len(v) + WIRE_FRAMING
                                              for k, v in headers)


OURS = [("pmo_reason", b"not valid JSON"), ("pmo_kind", b"dlq"),
        ("pmo_received_at", b"2026-11-30T06:00:00+00:00"), ("pmo_source_topic", b"pmo.inbound"),
        ("pmo_source_partition", b"0"), ("pmo_source_offset", b"12345")]


@settings(max_examples=60, derandomize=True, deadline=None)
@given(value=st.integers(0, BROKER_LIMIT), key=st.integers(0, BROKER_LIMIT),
       count=st.integers(0, 20_000), width=st.integers(1, 200))
def test_a_dead_letter_fits_and_keeps_our_headers(value: int, key: int, count: int,
                                                  width: int) -> None:
    original = [(f"h{i}", b"v" * width) for i in range(count)]
    raw, k = b"x" * value, (b"k" * key) or None
    if wire(k, raw, original) > BROKER_LIMIT:  # the broker never delivers such a message
        return
    out_key, out_value, out_headers = fit(raw, k, [*original, *OURS], len(OURS))
    assert wire(out_key, out_value, out_headers) <= DEAD_LETTER_MAX_BYTES
    names = dict(out_headers)
    assert all(names[n] == v for n, v in OURS)  # ours always there, unchanged
    if "pmo_truncated_from" in names:
        assert names["pmo_truncated_from"] == str(value).encode()
        assert names["pmo_sha256"] == hashlib.sha256(raw).hexdigest().encode()
        assert raw.startswith(out_value)
    else:
        assert out_value == raw
    if "pmo_headers_dropped" in names:
        assert names["pmo_headers_dropped"] == str(count).encode()
    else:
        assert out_headers[:count] == original
    if "pmo_key_sha256" in names:
        assert k is not None and k.startswith(out_key or b"")
    else:
        assert out_key == k


def test_what_fits_is_kept_whole() -> None:
    headers = [("ce_id", b"1"), *OURS]
    assert fit(b"{}", b"P-1", headers, len(OURS)) == (b"P-1", b"{}", headers)


def test_the_cloudevent_headers_stay_when_the_others_must_go() -> None:
    # Binary mode with ~1 MB of other headers: the ce_* headers (and content-type) name
    # the event, so its receipt and the rejection log can still find it.
    ce = [("ce_specversion", b"1.0"), ("ce_id", b"e-1"), ("ce_source", b"urn:x"),
          ("ce_type", b"pmo.project.cancelled"), ("ce_subject", b"P-1"),
          ("content-type", b"application/json")]
    noise = [(f"x{i:05d}", b"y" * 94) for i in range(10_178)]
    key, value, headers = fit(b"{not json", b"P-1", [*noise[:5000], *ce, *noise[5000:], *OURS],
                              len(OURS))
    names = dict(headers)
    assert [h for h in headers if h in ce] == ce
    assert names["pmo_headers_dropped"] == b"10178"
    assert (key, value) == (b"P-1", b"{not json")
    assert wire(key, value, headers) <= DEAD_LETTER_MAX_BYTES
