"""API keys with roles (CONTRACT section 4). ``auditor`` includes ``viewer``."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Annotated, Any

from fastapi import Depends, Request

from api.problems import Problem

IMPLIED: dict[str, set[str]] = {
    "publisher": {"publisher"},
    "viewer": {"viewer"},
    "auditor": {"auditor", "viewer"},
    "admin": {"admin"},
}


class KeyRing:
    """Which roles each configured key holds. Keys come from settings, never from code."""

    def __init__(self, keys: Mapping[str, Sequence[str]]) -> None:
        self._roles = {key: set().union(*(IMPLIED[r] for r in roles)) if roles else set()
                       for key, roles in keys.items()}

    def roles_of(self, authorization: str | None) -> set[str] | None:
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        return self._roles.get(authorization[7:].strip())


def require(role: str) -> Callable[[Request], Coroutine[Any, Any, None]]:
    # async, though it does no I/O: a sync dependency would cost a thread-pool hop.
    async def check(request: Request) -> None:
        ring: KeyRing = request.app.state.keyring
        roles = ring.roles_of(request.headers.get("authorization"))
        if roles is None:
            raise Problem(401, "Unauthorized", "a valid 'Authorization: Bearer <api key>' "
                          "header is required")
        if role not in roles:
            raise Problem(403, "Forbidden", f"this API key lacks the '{role}' role")

    return check


Publisher = Annotated[None, Depends(require("publisher"))]
Viewer = Annotated[None, Depends(require("viewer"))]
Auditor = Annotated[None, Depends(require("auditor"))]
Admin = Annotated[None, Depends(require("admin"))]
