"""The cache of user status that bearer authentication (``taskstream.web.authentication``)
consults on every authenticated request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from async_lru import alru_cache
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.auth.repository import UserRepository
from taskstream.enums import UserRole

# A user deactivated (or demoted), or a password changed, takes effect within this many seconds
# on every worker (at once on the process that made the change: it forgets its entry);
# checking the database on each request would cost a query on the hot path.
USER_STATUS_TTL_S = 10.0
MAX_USERS = 100_000


@dataclass(frozen=True, slots=True)
class UserStatus:
    role: UserRole
    # Access tokens carrying an older version are refused (password change, deactivation).
    token_version: int


class UserStatusCache:
    """Current role and token version of each user (None: deactivated or unknown), refreshed
    every few seconds.

    async-lru: LRU-bounded, with expiry, and single flight (concurrent requests of one user
    share one query when the entry expires under load)."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._factory = session_factory
        self.status = alru_cache(maxsize=MAX_USERS, ttl=USER_STATUS_TTL_S)(self._load)

    async def active_role(self, user_id: uuid.UUID) -> UserRole | None:
        """The user's role; None when the user is deactivated or unknown."""
        status = await self.status(user_id)
        return status.role if status is not None else None

    def forget(self, user_id: uuid.UUID) -> None:
        """Drop the user's entry: this process sees a change made here on the next request."""
        self.status.cache_invalidate(user_id)

    async def close(self) -> None:
        """Cancel loads still in flight (application shutdown)."""
        await self.status.cache_close()

    async def _load(self, user_id: uuid.UUID) -> UserStatus | None:
        async with self._factory() as session:
            found = await UserRepository.from_session(session).active_status(user_id)
        return UserStatus(*found) if found is not None else None
