"""Messages of ``pmo.events``: one stored event each, exactly as stored.

key = the aggregate's store id (``str(originator_id)``), so one aggregate's events
stay in one partition, in store order. value = the stored ``state`` bytes, unchanged
(the audit hash covers them; the recording time is inside). Headers carry the rest
of the notification: ``position`` (the notification id), ``prev_position`` (the id
of the notification before it in the log, 0 for the first), ``version`` and
``topic`` (the event type). Partitions interleave arbitrarily; ``prev_position``
lets an auditor re-chain the whole log.

Nothing is sent twice: the store id is the key only, and the recording time is
read from the value (until 2026-11-25 both were also headers; ``decode`` still
reads such messages). Every header costs each consumer about 0.6 us to parse in
kafka-python, per message.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from eventsourcing.persistence import Mapper, Notification, StoredEvent

from domain.application import PmoApplication
from projections.feed import RecordedEvent, to_recorded

Headers = list[tuple[str, bytes]]
ID_CACHE = 100_000  # parsed store ids (and topics) kept by a decoder


def encode(notification: Notification, prev_position: int) -> tuple[bytes, bytes, Headers]:
    """(key, value, headers) of the ``pmo.events`` message for one notification."""
    headers = [
        ("position", str(notification.id).encode()),
        ("prev_position", str(prev_position).encode()),
        ("version", str(notification.originator_version).encode()),
        ("topic", notification.topic.encode()),
    ]
    return str(notification.originator_id).encode(), notification.state, headers


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

    def decode(self, value: bytes, headers: Sequence[tuple[str, bytes]],
               key: bytes | None = None) -> RecordedEvent:
        """The event of one message; ``key`` is the message's key (the store id)."""
        h = dict(headers)
        try:
            raw_id = key if key is not None else h["originator_id"]
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
