"""The audit chain's hash, as documented in ``projections.audit``, recomputed by hand."""

from __future__ import annotations

import hashlib

from projections.audit import GENESIS, digest, link

STATE = b'{"actor":"cfo","approved_budget":{"_type_":"decimal_str","_data_":"90000"}}'
OID = "3f2a5c1e9b7d4e6f8a0b1c2d3e4f5a6b"
US = 1_772_441_100_123_456
RECEIPT = ("urn:pmo:jira", "jira-42")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chain_hash(prev: str, position: int, oid: str, version: int, topic: str, us: int | None,
               source: str | None, event_id: str | None, state: bytes) -> str:
    return link(prev, digest(position, oid, version, topic, us, source, event_id, state))


def test_the_digest_covers_position_store_id_version_topic_time_receipt_and_bytes() -> None:
    canonical = (b"7\n" + OID.encode() + b"\n2\npmo.project.approved\n"
                 + f"{US}\nurn:pmo:jira\njira-42\n".encode() + STATE)
    assert digest(7, OID, 2, "pmo.project.approved", US, *RECEIPT, STATE) == sha(canonical)


def test_a_missing_time_or_receipt_is_the_empty_string() -> None:
    canonical = b"7\n" + OID.encode() + b"\n2\npmo.project.approved\n\n\n\n" + STATE
    assert digest(7, OID, 2, "pmo.project.approved", None, None, None, STATE) == sha(canonical)


def test_each_hash_links_the_previous_hash_to_the_digest() -> None:
    first = chain_hash(GENESIS, 1, OID, 1, "pmo.project.proposed", US, *RECEIPT, STATE)
    d1 = digest(1, OID, 1, "pmo.project.proposed", US, *RECEIPT, STATE)
    assert first == sha((GENESIS + d1).encode())
    second = chain_hash(first, 2, OID, 2, "pmo.project.approved", US, *RECEIPT, STATE)
    d2 = digest(2, OID, 2, "pmo.project.approved", US, *RECEIPT, STATE)
    assert second == link(first, d2) == sha((first + d2).encode())


def test_any_change_to_an_event_changes_its_hash() -> None:
    t = "pmo.project.cost_recorded"
    base = chain_hash(GENESIS, 5, OID, 3, t, US, *RECEIPT, STATE)
    changed = [
        chain_hash(GENESIS, 6, OID, 3, t, US, *RECEIPT, STATE),
        chain_hash(GENESIS, 5, OID[::-1], 3, t, US, *RECEIPT, STATE),
        chain_hash(GENESIS, 5, OID, 4, t, US, *RECEIPT, STATE),
        chain_hash(GENESIS, 5, OID, 3, "pmo.project.started", US, *RECEIPT, STATE),
        chain_hash(GENESIS, 5, OID, 3, t, US, *RECEIPT, STATE + b" "),
        chain_hash(GENESIS, 5, OID, 3, t, US - 1, *RECEIPT, STATE),
        chain_hash(GENESIS, 5, OID, 3, t, None, *RECEIPT, STATE),
        chain_hash(GENESIS, 5, OID, 3, t, US, "urn:pmo:erp", "jira-42", STATE),
        chain_hash(GENESIS, 5, OID, 3, t, US, "urn:pmo:jira", "jira-43", STATE),
        chain_hash("1" * 64, 5, OID, 3, t, US, *RECEIPT, STATE),
    ]
    assert base not in changed and len(set(changed)) == len(changed)
