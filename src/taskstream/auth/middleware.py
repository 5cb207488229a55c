"""Bearer-token authentication for every route not marked ``exclude_from_auth=True``."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
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

    async def active_role(self, user_id: uuid.UUID) -> UserRole | None:
        cached = self._entries.get(user_id)
        if cached is not None and cached[1] > time.monotonic():
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


class JWTAuthMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NotAuthorizedException("A bearer token is required")
        state = connection.app.state
        codec: TokenCodec = state.token_codec
        try:
            principal = codec.verify(token.strip())
        except UnauthorizedError as exc:
            raise NotAuthorizedException(exc.detail) from exc
        role = await state.user_status.active_role(principal.user_id)
        if role is None:
            raise NotAuthorizedException("The user no longer exists")
        if role is not principal.role:
            principal = Principal(user_id=principal.user_id, role=role)
        return AuthenticationResult(user=principal, auth=token)
