"""Bearer-token authentication, called by ``taskstream.web.guard`` for every route not marked
``exclude_from_auth=True`` (and by the detailed health view).

It reads the token codec and the user-status cache from the app's state (built by the app
factory from ``taskstream.auth``), so the edge does not import the auth area: auth's
endpoints use the edge (client address, login guard), never the other way round."""

from __future__ import annotations

import uuid
from typing import Protocol

from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException

from taskstream.enums import UserRole
from taskstream.errors import UnauthorizedError
from taskstream.principal import Principal


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
