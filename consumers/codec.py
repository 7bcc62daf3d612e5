"""Messages of ``pmo.events``: one stored event each, exactly as stored.

key = the aggregate's store id (``str(originator_id)``), so one aggregate's events
stay in one partition, in store order. value = the stored ``state`` bytes, unchanged
(the audit hash covers them). Headers carry the rest of the notification:
``position`` (the notification id), ``prev_position`` (the id of the notification
before it in the log, 0 for the first), ``originator_id``, ``version``, ``topic``
(the event type) and ``recorded_at`` (the store's timestamp, ISO 8601). Partitions
interleave arbitrarily; ``prev_position`` lets an auditor re-chain the whole log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Mapper, Notification, StoredEvent

from domain.application import PmoApplication
from projections.feed import RecordedEvent, plain_state, to_recorded

Headers = list[tuple[str, bytes]]
ID_CACHE = 100_000  # parsed store ids (and topics) kept by a decoder


def encode(notification: Notification, prev_position: int,
           mapper: Mapper[UUID] | None = None) -> tuple[bytes, bytes, Headers]:
    """(key, value, headers) of the ``pmo.events`` message for one notification.

    ``mapper`` is needed only if the store enciphers or compresses (to read the time).
    """
    originator = str(notification.originator_id).encode()
    headers = [
        ("position", str(notification.id).encode()),
        ("prev_position", str(prev_position).encode()),
        ("originator_id", originator),
        ("version", str(notification.originator_version).encode()),
        ("topic", notification.topic.encode()),
        ("recorded_at", _recorded_at(
            notification.state if mapper is None else plain_state(mapper, notification.state))),
    ]
    return originator, notification.state, headers


def _recorded_at(state: bytes) -> bytes:
    # The timestamp is the first field of every stored state; reading it costs far
    # less than decoding the event.
    stamp: Any = orjson.loads(state).get("timestamp")
    if isinstance(stamp, dict):
        stamp = stamp.get("_data_")
    return str(stamp).encode()


class EventDecoder:
    """Turns ``pmo.events`` messages back into the ``RecordedEvent`` of the embedded feed.

    Like the embedded runner, it does not decode the domain event (projections read
    the stored JSON); the mapper is there for a configured cipher or compressor.
    """

    def __init__(self, mapper: Mapper[UUID]) -> None:
        self._mapper = mapper
        # Without cipher or compressor the stored bytes are the JSON the projections read,
        # and the event is built directly (the hot path of every consumer).
        self._plain = mapper.cipher is None and mapper.compressor is None
        # Parsed header values by their bytes: a poll holds many events of few aggregates
        # and topics, and ``UUID()`` alone costs about 1 us. Bounded: cleared when full.
        self._ids: dict[bytes, tuple[UUID, str]] = {}
        self._topics: dict[bytes, str] = {}

    @classmethod
    def for_pmo(cls) -> EventDecoder:
        """The PMO application's mapper (same transcodings), on no store at all."""
        app = PmoApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        return cls(app.mapper)

    def decode(self, value: bytes, headers: Sequence[tuple[str, bytes]]) -> RecordedEvent:
        h = dict(headers)
        try:
            raw_id = h["originator_id"]
            known = self._ids.get(raw_id)
            if known is None:
                if len(self._ids) >= ID_CACHE:
                    self._ids.clear()
                uuid = UUID(raw_id.decode())
                known = self._ids[raw_id] = (uuid, uuid.hex)
            originator_id, hex_id = known
            version = int(h["version"])
            raw_topic = h["topic"]
            topic = self._topics.get(raw_topic)
            if topic is None:
                if len(self._topics) >= ID_CACHE:
                    self._topics.clear()
                topic = self._topics[raw_topic] = raw_topic.decode()
            position = int(h["position"])
            prev_position = int(h["prev_position"])
        except (KeyError, ValueError) as e:
            raise ValueError(f"not a pmo.events message (headers {sorted(h)}): {e}") from e
        if self._plain:
            return RecordedEvent(position, originator_id, version, topic, value, None,
                                 prev_position, None, hex_id)
        return to_recorded(self._mapper, position,
                           StoredEvent(originator_id, version, topic, value), prev_position)
