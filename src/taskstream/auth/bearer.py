"""Bearer-token authentication (called by ``taskstream.web.guard`` for every route not marked
``exclude_from_auth=True``) and the cache of user status it relies on."""

from __future__ import annotations

import uuid

from async_lru import alru_cache
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.auth.repository import UserRepository
from taskstream.auth.tokens import TokenCodec
from taskstream.enums import UserRole
from taskstream.errors import UnauthorizedError
from taskstream.principal import Principal

# A user deleted (or demoted) takes effect within this many seconds on every worker; checking
# the database on each request would cost a query on the hot path.
USER_STATUS_TTL_S = 10.0
MAX_USERS = 100_000


class UserStatusCache:
    """Current role of each user (None: deleted or unknown), refreshed every few seconds.

    async-lru: LRU-bounded, with expiry, and single flight (concurrent requests of one user
    share one query when the entry expires under load)."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._factory = session_factory
        self.active_role = alru_cache(maxsize=MAX_USERS, ttl=USER_STATUS_TTL_S)(self._load)

    async def close(self) -> None:
        """Cancel loads still in flight (application shutdown)."""
        await self.active_role.cache_close()

    async def _load(self, user_id: uuid.UUID) -> UserRole | None:
        async with self._factory() as session:
            return await UserRepository.from_session(session).active_role(user_id)


async def authenticate(state: State, authorization: bytes | None) -> Principal:
    """The caller named by an ``Authorization: Bearer <jwt>`` header value, or 401.

    Both lookups are answered from memory on the hot path (verified tokens until they expire,
    user status for ``USER_STATUS_TTL_S``): a known caller costs no I/O."""
    scheme, _, token = (authorization or b"").decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise NotAuthorizedException("A bearer token is required")
    codec: TokenCodec = state.token_codec
    try:
        principal = codec.verify(token.strip())
    except UnauthorizedError as exc:
        raise NotAuthorizedException(exc.detail) from exc
    statuses: UserStatusCache = state.user_status
    role = await statuses.active_role(principal.user_id)
    if role is None:
        raise NotAuthorizedException("The user no longer exists")
    if role is not principal.role:
        principal = Principal(user_id=principal.user_id, role=role)
    return principal
