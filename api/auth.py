"""API keys with roles (CONTRACT section 4). ``auditor`` includes ``viewer``."""

from __future__ import annotations

import hashlib
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


def caller_roles(request: Request) -> set[str]:
    """The roles of the request's key; 401 without a valid one."""
    ring: KeyRing = request.app.state.keyring
    given = request.headers.getlist("authorization")
    if len(given) > 1:
        # A request with two keys has no single caller: the first one used to win silently,
        # so a proxy that adds its own key beside the client's chose who acted.
        raise Problem(401, "Unauthorized", "the Authorization header is given more than "
                      "once: send exactly one 'Authorization: Bearer <api key>'")
    roles = ring.roles_of(given[0] if given else None)
    if roles is None:
        raise Problem(401, "Unauthorized", "a valid 'Authorization: Bearer <api key>' "
                      "header is required")
    return roles


def caller_actor(request: Request) -> str:
    """Who acts, for the audit trail: ``key:`` and the first 16 hex digits of the SHA-256
    of the request's API key. Keys have no configured names; the key itself must never be
    stored, and a hash tells an auditor which key acted (hash the key to compare)."""
    header = request.headers.get("authorization") or ""
    key = header[7:].strip() if header.lower().startswith("bearer ") else ""
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]


def require_role(roles: set[str], role: str) -> None:
    if role not in roles:
        raise Problem(403, "Forbidden", f"this API key lacks the '{role}' role")


# Each role check -> its role: ``api.openapi`` finds the routes that need a key by it.
ROLE_CHECKS: dict[Callable[..., Any], str] = {}


def require(role: str) -> Callable[[Request], Coroutine[Any, Any, set[str]]]:
    # async, though it does no I/O: a sync dependency would cost a thread-pool hop.
    async def check(request: Request) -> set[str]:
        roles = caller_roles(request)
        require_role(roles, role)
        return roles

    ROLE_CHECKS[check] = role
    return check


async def any_key(request: Request) -> set[str]:
    """Any valid key, whatever its roles (``GET /v1/whoami``)."""
    return caller_roles(request)


ROLE_CHECKS[any_key] = "any"


async def publisher_or_auditor(request: Request) -> set[str]:
    """``publisher`` or ``auditor`` (``GET /v1/receipts``: a publisher reads its own writes)."""
    roles = caller_roles(request)
    if not roles & {"publisher", "auditor"}:
        raise Problem(403, "Forbidden", "this API key lacks the 'publisher' or 'auditor' role")
    return roles


ROLE_CHECKS[publisher_or_auditor] = "publisher or auditor"

# Each alias checks the role and hands the caller's roles to routes that need more
# (``?as_of=`` on a view route asks for ``auditor`` on top of ``viewer``).
Publisher = Annotated[set[str], Depends(require("publisher"))]
Viewer = Annotated[set[str], Depends(require("viewer"))]
Auditor = Annotated[set[str], Depends(require("auditor"))]
Admin = Annotated[set[str], Depends(require("admin"))]
AnyKey = Annotated[set[str], Depends(any_key)]
PublisherOrAuditor = Annotated[set[str], Depends(publisher_or_auditor)]
