"""The cache of user status that bearer authentication (``taskstream.web.authentication``)
consults on every authenticated request."""

from __future__ import annotations

import uuid

from async_lru import alru_cache
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.auth.repository import UserRepository
from taskstream.enums import UserRole

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
