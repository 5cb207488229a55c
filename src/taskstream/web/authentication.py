"""Bearer-token authentication, called by ``taskstream.web.guard`` for every route not marked
``exclude_from_auth=True`` (and by the detailed health view); and ticket authentication for
the routes a browser opens without headers (``opt={"ticket": purpose}``, see web/tickets.py).

It reads the token codec and the user-status cache from the app's state (built by the app
factory from ``taskstream.auth``), so the edge does not import the auth area: auth's
endpoints use the edge (client address, login guard), never the other way round."""

from __future__ import annotations

import uuid
from typing import Any, Final, Protocol
from urllib.parse import parse_qs

import jwt
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException
from litestar.types import Scope

from taskstream.enums import UserRole
from taskstream.errors import UnauthorizedError
from taskstream.principal import Principal
from taskstream.web.tickets import redeem_ticket

# Where a ticket-authenticated request keeps the expiry its ticket carried.
TICKET_EXPIRY_KEY: Final = "taskstream.ticket_expires_at"


class TokenVerifier(Protocol):
    def verify(self, token: str) -> Principal: ...


class UserStatus(Protocol):
    @property
    def role(self) -> UserRole: ...
    @property
    def token_version(self) -> int: ...


class UserStatuses(Protocol):
    async def status(self, user_id: uuid.UUID) -> UserStatus | None: ...


async def authenticate(state: State, authorization: bytes | None) -> Principal:
    """The caller named by an ``Authorization: Bearer <jwt>`` header value, or 401.

    Both lookups are answered from memory on the hot path (verified tokens until they expire,
    user status for ``USER_STATUS_TTL_S``): a known caller costs no I/O."""
    scheme, _, token = (authorization or b"").decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise NotAuthorizedException("A bearer token is required")
    codec: TokenVerifier = state.token_codec
    try:
        principal = codec.verify(token.strip())
    except UnauthorizedError as exc:
        raise NotAuthorizedException(exc.detail) from exc
    statuses: UserStatuses = state.user_status
    status = await statuses.status(principal.user_id)
    if status is None:
        raise NotAuthorizedException("The user no longer exists or is deactivated")
    if principal.token_version < status.token_version:
        # issued before a password change or reset, or a deactivation
        raise NotAuthorizedException("The session has ended; log in again")
    if status.role is not principal.role:
        principal = Principal(
            user_id=principal.user_id, role=status.role, token_version=principal.token_version
        )
    return principal


async def authenticate_ticket(state: State, scope: Scope, purpose: str) -> Principal:
    """The caller named by the request's ``?ticket=`` (one use, see web/tickets.py), or 401.

    The ticket's expiry (that of the token that asked for it) is kept in the scope for
    ``credentials_expiry``."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    ticket = (query.get("ticket") or [""])[0]
    if not ticket:
        raise NotAuthorizedException("A bearer token or a ticket is required")
    grant = await redeem_ticket(state.redis, purpose, ticket)
    if grant is None:
        raise NotAuthorizedException("The ticket is unknown, used or expired: ask for a new one")
    statuses: UserStatuses = state.user_status
    status = await statuses.status(grant.user_id)
    if status is None:
        raise NotAuthorizedException("The user no longer exists or is deactivated")
    if grant.token_version < status.token_version:
        raise NotAuthorizedException("The session that asked for this ticket has ended")
    raw: dict[str, Any] = scope  # type: ignore[assignment]
    raw[TICKET_EXPIRY_KEY] = grant.expires_at
    return Principal(user_id=grant.user_id, role=status.role, token_version=grant.token_version)


def credentials_expiry(scope: Scope) -> float:
    """Unix time at which the request's credentials expire: its ticket's grant, or the
    ``exp`` of its bearer token (already verified by the request guard)."""
    raw: dict[str, Any] = scope  # type: ignore[assignment]
    if TICKET_EXPIRY_KEY in raw:
        return float(raw[TICKET_EXPIRY_KEY])
    authorization = raw.get("auth")
    text = authorization.decode("latin-1") if isinstance(authorization, bytes) else authorization
    token = (text or "").partition(" ")[2].strip()
    return float(jwt.decode(token, options={"verify_signature": False})["exp"])
