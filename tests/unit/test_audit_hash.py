"""The audit chain's hash, as documented in ``projections.audit``, recomputed by hand."""

from __future__ import annotations

import hashlib

from projections.audit import GENESIS, chain_hash, digest, link

STATE = b'{"actor":"cfo","approved_budget":{"_type_":"decimal_str","_data_":"90000"}}'
OID = "3f2a5c1e9b7d4e6f8a0b1c2d3e4f5a6b"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_digest_covers_position_store_id_version_topic_and_the_stored_bytes() -> None:
    canonical = b"7\n" + OID.encode() + b"\n2\npmo.project.approved\n" + STATE
    assert digest(7, OID, 2, "pmo.project.approved", STATE) == sha(canonical)


def test_each_hash_links_the_previous_hash_to_the_digest() -> None:
    first = chain_hash(GENESIS, 1, OID, 1, "pmo.project.proposed", STATE)
    assert first == sha((GENESIS + digest(1, OID, 1, "pmo.project.proposed", STATE)).encode())
    second = chain_hash(first, 2, OID, 2, "pmo.project.approved", STATE)
    assert second == link(first, digest(2, OID, 2, "pmo.project.approved", STATE))
    assert second == sha((first + digest(2, OID, 2, "pmo.project.approved", STATE)).encode())


def test_any_change_to_an_event_changes_its_hash() -> None:
    base = chain_hash(GENESIS, 5, OID, 3, "pmo.project.cost_recorded", STATE)
    changed = [
        chain_hash(GENESIS, 6, OID, 3, "pmo.project.cost_recorded", STATE),
        chain_hash(GENESIS, 5, OID[::-1], 3, "pmo.project.cost_recorded", STATE),
        chain_hash(GENESIS, 5, OID, 4, "pmo.project.cost_recorded", STATE),
        chain_hash(GENESIS, 5, OID, 3, "pmo.project.started", STATE),
        chain_hash(GENESIS, 5, OID, 3, "pmo.project.cost_recorded", STATE + b" "),
        chain_hash("1" * 64, 5, OID, 3, "pmo.project.cost_recorded", STATE),
    ]
    assert base not in changed and len(set(changed)) == len(changed)
