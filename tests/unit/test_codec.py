"""``pmo.events`` messages: what the relay writes, every consumer reads back, in any form."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Notification

from consumers.codec import EventDecoder, encode

STATE = b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-03-01T10:00:00+00:00"}}'


def notification(position: int, originator_id: UUID, version: int = 3,
                 topic: str = "pmo.project.cost_recorded") -> Notification:
    return Notification(id=position, originator_id=originator_id, originator_version=version,
                        topic=topic, state=STATE)


def test_a_message_carries_the_notification_in_one_header_and_the_stored_bytes() -> None:
    # position, prev_position, version, recording time (the value's timestamp), type
    oid = uuid4()
    key, value, headers = encode(notification(42, oid), prev_position=41)
    assert key == str(oid).encode()
    assert value == STATE  # unchanged: the audit hash covers these bytes
    assert headers == [("pmo", b"42 41 3 2026-03-01T10:00:00+00:00 pmo.project.cost_recorded")]


def test_decode_gives_back_what_encode_wrote() -> None:
    oid = uuid4()
    decoder = EventDecoder.for_pmo()
    for position, prev in [(1, 0), (7, 5), (10**12, 10**12 - 1)]:
        key, value, headers = encode(notification(position, oid, 12, "pmo.project.approved"),
                                     prev)
        event = decoder.decode(value, headers, key)
        assert (event.position, event.prev_position) == (position, prev)
        assert (event.originator_id, event.oid_hex) == (oid, oid.hex)
        assert (event.originator_version, event.topic) == (12, "pmo.project.approved")
        assert event.state == STATE
        assert event.recorded_us == 1772359200 * 1_000_000


def test_decode_still_reads_the_earlier_forms() -> None:
    oid = uuid4()
    decoder = EventDecoder.for_pmo()
    four = [("position", b"9"), ("prev_position", b"8"), ("version", b"2"),
            ("topic", b"pmo.project.started")]
    six = [("originator_id", str(oid).encode()), *four,
           ("recorded_at", b"2026-03-01T10:00:00+00:00")]
    for headers, key in [(four, str(oid).encode()), (six, None)]:
        event = decoder.decode(STATE, headers, key)
        assert (event.position, event.prev_position, event.originator_version) == (9, 8, 2)
        assert (event.originator_id, event.topic) == (oid, "pmo.project.started")


@pytest.mark.parametrize("headers", [
    [],
    [("pmo", b"12 11 3 pmo.project.started")],  # a field missing
    [("pmo", b"12 x 3 2026-03-01T10:00:00+00:00 pmo.project.started")],  # not a number
    [("position", b"1"), ("version", b"1")],  # an earlier form, incomplete
])
def test_a_message_that_is_not_a_pmo_event_is_refused_with_its_headers_named(
        headers: list[tuple[str, bytes]]) -> None:
    with pytest.raises(ValueError, match=r"not a pmo\.events message"):
        EventDecoder.for_pmo().decode(STATE, headers, str(uuid4()).encode())
