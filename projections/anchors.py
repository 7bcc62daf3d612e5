"""Signed anchors: the chain's head at a position, signed with Ed25519, kept off the machine.

A checkpoint is ``{position, head_hash, recorded_at, public_key, signature}``:
``head_hash`` is the chain's hash at ``position`` (``projections.audit``),
``recorded_at`` the instant the checkpoint was taken (UTC, ISO 8601),
``public_key`` the raw 32-byte Ed25519 key and ``signature`` the signature of
``signed_bytes`` (both hex). Checking one recomputes the chain from the event
store alone up to ``position``: a store edited below it and a trail recomputed
to match are both found, because the head then differs from the anchored one.
The signature says which key made the checkpoint; its protection against an
insider is that a copy lives where that insider cannot write (docs/audit.md).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from domain.application import PmoApplication
from projections.audit import GENESIS
from projections.chain import Progress, StoreChain
from projections.db import Db
from projections.feed import from_micros

FORMAT = "pmo-ledger audit anchor v1"
MAX_POSITION = 2**63 - 1  # a BIGINT: what both stores can compare a position against
_HASH = re.compile("[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    position: int
    head_hash: str
    recorded_at: str
    public_key: str = ""
    signature: str = ""

    def signed_bytes(self) -> bytes:
        return f"{FORMAT}\n{self.position}\n{self.head_hash}\n{self.recorded_at}\n".encode()

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Checkpoint:
        """A checkpoint as ``as_json`` wrote it, every field of its own JSON type: an
        edited field is refused, never coerced (``165.7`` is not position 165, whose
        signature it would otherwise borrow)."""
        if not isinstance(data, dict):
            raise ValueError("an anchor is a JSON object")
        missing = [k for k in ("position", "head_hash", "recorded_at") if k not in data]
        if missing:
            raise ValueError(f"not an anchor: missing {', '.join(missing)}")
        position = data["position"]
        if type(position) is not int or not 0 <= position <= MAX_POSITION:
            raise ValueError("not an anchor: position must be a whole number from 0 to "
                             f"{MAX_POSITION}, not {str(position)[:40]!r}")
        head_hash = data["head_hash"]
        if not isinstance(head_hash, str) or _HASH.fullmatch(head_hash) is None:
            raise ValueError("not an anchor: head_hash must be 64 lowercase hex digits")
        texts = {k: data.get(k, "") for k in ("recorded_at", "public_key", "signature")}
        wrong = [k for k, v in texts.items() if not isinstance(v, str)]
        if wrong:
            raise ValueError(f"not an anchor: {', '.join(wrong)} must be text")
        return cls(position, head_hash, texts["recorded_at"], texts["public_key"],
                   texts["signature"])


def trail_head(db: Db) -> dict[str, Any]:
    """The trail's head as it stands (``GET /v1/audit/anchor``): cheap, not recomputed.

    A head taken from a falsified trail cannot pass later: ``check`` recomputes from the store.
    """
    rows = db.query("SELECT c.position, c.hash, a.recorded_us FROM pv_audit_chain c JOIN "
                    "pv_audit a ON a.position = c.position ORDER BY c.position DESC LIMIT 1")
    position, head_hash, event_us = rows[0] if rows else (0, GENESIS, None)
    return {"position": int(position), "head_hash": head_hash,
            "recorded_at": datetime.now(UTC).isoformat(),
            "event_recorded_at": None if event_us is None else from_micros(event_us).isoformat()}


def store_head(app: PmoApplication, upto: int | None = None,
               progress: Progress | None = None) -> tuple[int, str, str | None]:
    """(position, hash) of the chain recomputed from the store, and a receipt break if any."""
    chain = StoreChain(app, upto, progress)
    for _ in chain:
        pass
    broken = chain.receipt_break
    return (*chain.head, None if broken is None else f"{broken.position}: {broken.detail}")


def sign(key: Ed25519PrivateKey, position: int, head_hash: str,
         at: datetime | None = None) -> Checkpoint:
    unsigned = Checkpoint(position, head_hash, (at or datetime.now(UTC)).isoformat())
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    return Checkpoint(unsigned.position, unsigned.head_hash, unsigned.recorded_at, public,
                      key.sign(unsigned.signed_bytes()).hex())


def signature_valid(cp: Checkpoint) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(cp.public_key)).verify(
            bytes.fromhex(cp.signature), cp.signed_bytes())
    except (InvalidSignature, ValueError):
        return False
    return True


def check(app: PmoApplication, cp: Checkpoint,
          progress: Progress | None = None) -> dict[str, Any]:
    """Does the store, recomputed up to ``cp.position``, end in ``cp.head_hash``?"""
    out: dict[str, Any] = {"anchor_position": cp.position, "public_key": cp.public_key,
                           "signature_valid": signature_valid(cp)}
    if not out["signature_valid"]:
        return {"ok": False, **out, "what": "signature",
                "detail": "the anchor's signature does not match its content"}
    position, head_hash, receipt = store_head(app, cp.position, progress)
    out |= {"store_position": position, "head_hash": head_hash}
    if position != cp.position:
        return {"ok": False, **out, "what": "missing",
                "detail": f"the store ends at {position}, before the anchored position"}
    if head_hash != cp.head_hash:
        return {"ok": False, **out, "what": "head",
                "detail": "the store up to the anchored position is not the one anchored"}
    if receipt is not None:
        return {"ok": False, **out, "what": "receipt", "detail": receipt}
    return {"ok": True, **out}
