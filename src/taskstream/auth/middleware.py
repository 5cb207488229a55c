"""Bearer-token authentication (called by ``taskstream.guard`` for every route not marked
``exclude_from_auth=True``) and the cache of user status it relies on."""

from __future__ import annotations

import asyncio
import time
import uuid

from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.auth.principal import Principal
from taskstream.auth.repository import UserRepository
from taskstream.auth.tokens import TokenCodec
from taskstream.enums import UserRole
from taskstream.errors import UnauthorizedError

# A user deleted (or demoted) takes effect within this many seconds on every worker; checking
# the database on each request would cost a query on the hot path.
USER_STATUS_TTL_S = 10.0


class UserStatusCache:
    """Current role of each user (None: deleted or unknown), refreshed every few seconds."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._factory = session_factory
        self._entries: dict[uuid.UUID, tuple[UserRole | None, float]] = {}
        self._loading: dict[uuid.UUID, asyncio.Future[UserRole | None]] = {}

    def fresh(self, user_id: uuid.UUID) -> tuple[UserRole | None, float] | None:
        """The cached (role, expiry) while it is fresh, without awaiting anything."""
        cached = self._entries.get(user_id)
        return cached if cached is not None and cached[1] > time.monotonic() else None

    async def active_role(self, user_id: uuid.UUID) -> UserRole | None:
        cached = self.fresh(user_id)
        if cached is not None:
            return cached[0]
        # single flight: concurrent requests of one user share one query
        pending = self._loading.get(user_id)
        if pending is None:
            pending = asyncio.ensure_future(self._load(user_id))
            self._loading[user_id] = pending
        return await asyncio.shield(pending)

    async def _load(self, user_id: uuid.UUID) -> UserRole | None:
        try:
            async with self._factory() as session:
                role = await UserRepository.from_session(session).active_role(user_id)
            if len(self._entries) > 100_000:
                self._entries.clear()
            self._entries[user_id] = (role, time.monotonic() + USER_STATUS_TTL_S)
            return role
        finally:
            self._loading.pop(user_id, None)

    def forget(self, user_id: uuid.UUID) -> None:
        self._entries.pop(user_id, None)


async def authenticate(state: State, authorization: bytes | None) -> Principal:
    """The caller named by an ``Authorization: Bearer <jwt>`` header value, or 401.

    Both lookups are answered from memory on the hot path (verified tokens until they expire,
    user status for ``USER_STATUS_TTL_S``), so a known caller costs two dict lookups."""
    scheme, _, token = (authorization or b"").decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise NotAuthorizedException("A bearer token is required")
    codec: TokenCodec = state.token_codec
    try:
        principal = codec.verify(token.strip())
    except UnauthorizedError as exc:
        raise NotAuthorizedException(exc.detail) from exc
    statuses: UserStatusCache = state.user_status
    cached = statuses.fresh(principal.user_id)
    role = cached[0] if cached is not None else await statuses.active_role(principal.user_id)
    if role is None:
        raise NotAuthorizedException("The user no longer exists")
    if role is not principal.role:
        principal = Principal(user_id=principal.user_id, role=role)
    return principal
