"""A short-lived, in-process cache of project roles for the command hot path.

POST /tasks must not query PostgreSQL per request. A stale entry (a member removed within the
last few seconds) can let a command through; that is acceptable because the consumer checks
membership again when it applies the command and rejects it then. Reads and project writes
never use this cache.

The project's lifecycle (archived, soft-deleted) is cached per project for the same time. The
API process that archives or deletes a project forgets its entry at once (``forget_project``)
and announces it; every other API process forgets it when the announcement arrives
(``lifecycle_feed.py``, milliseconds), or at the latest when the entry expires (``ROLE_TTL_S`` +
jitter) if Redis lost it. A command accepted in between was acknowledged (202), so the consumer
applies it: archiving stops new commands, not the ones already accepted.
"""

from __future__ import annotations

import uuid

from async_lru import alru_cache
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.enums import ProjectRole
from taskstream.errors import ForbiddenError, NotFoundError, ProjectArchivedError
from taskstream.principal import Principal
from taskstream.projects.repository import ProjectRepository
from taskstream.projects.service import require_project_role, role_at_least

ROLE_TTL_S = 10.0
# Entries expire up to this much later, so a worker's entries do not all expire in one turn.
ROLE_TTL_JITTER_S = 2.0
MAX_ENTRIES = 100_000


class ProjectAccessCache:
    """Per-process caches (async-lru): LRU-bounded, with expiry, and single flight, so when an
    entry expires under load the concurrent requests that need it share one query instead of
    each taking a pool connection. Failures (non-members) are never cached."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._factory = session_factory
        self._roles = alru_cache(maxsize=MAX_ENTRIES, ttl=ROLE_TTL_S, jitter=ROLE_TTL_JITTER_S)(
            self._load_role
        )
        # a user's personal project never changes, so it is kept until evicted
        self._personal = alru_cache(maxsize=MAX_ENTRIES)(self._load_personal_project)
        # per project, so that archiving can forget it: True when archived
        self._archived = alru_cache(maxsize=MAX_ENTRIES, ttl=ROLE_TTL_S, jitter=ROLE_TTL_JITTER_S)(
            self._load_archived
        )
        self._members = alru_cache(maxsize=MAX_ENTRIES, ttl=ROLE_TTL_S, jitter=ROLE_TTL_JITTER_S)(
            self._load_member_role
        )

    async def role(
        self, principal: Principal, project_id: uuid.UUID, min_role: ProjectRole
    ) -> ProjectRole:
        """Like ``require_project_role`` but answered from memory for ``ROLE_TTL_S``, for a
        task command: an archived project refuses it (409), a deleted one is not found."""
        role = await self._roles(principal, project_id)
        if not role_at_least(role, min_role):
            raise ForbiddenError(f"This needs the {min_role.value} role in the project")
        if await self._archived(project_id):
            raise ProjectArchivedError(
                "The project is archived: it takes no new task commands until it is unarchived"
            )
        return role

    def forget_project(self, project_id: uuid.UUID) -> None:
        """Drop this process's cached lifecycle of the project (after archiving, unarchiving,
        deleting or restoring it)."""
        self._archived.cache_invalidate(project_id)

    def forget_all_projects(self) -> None:
        """Drop every cached project lifecycle (changes may have been missed)."""
        self._archived.cache_clear()

    async def is_member(self, project_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Whether ``user_id`` holds any role in the project (an assignee or reviewer must).
        Only memberships are cached: a user added a moment ago is found at once."""
        try:
            await self._members(project_id, user_id)
        except NotFoundError:
            return False
        return True

    async def personal_project(self, user_id: uuid.UUID) -> uuid.UUID:
        """The user's personal project id."""
        return await self._personal(user_id)

    async def close(self) -> None:
        """Cancel loads still in flight (application shutdown)."""
        await self._roles.cache_close()
        await self._personal.cache_close()
        await self._archived.cache_close()
        await self._members.cache_close()

    async def _load_role(self, principal: Principal, project_id: uuid.UUID) -> ProjectRole:
        async with self._factory() as session:
            return await require_project_role(session, principal, project_id, ProjectRole.VIEWER)

    async def _load_archived(self, project_id: uuid.UUID) -> bool:
        async with self._factory() as session:
            row = await ProjectRepository.from_session(session).lifecycle(project_id)
        if row is None or row.deleted_at is not None:  # raised, so never cached
            raise NotFoundError("Project not found")
        return row.archived_at is not None

    async def _load_member_role(self, project_id: uuid.UUID, user_id: uuid.UUID) -> ProjectRole:
        async with self._factory() as session:
            role = await ProjectRepository.from_session(session).member_role(project_id, user_id)
        if role is None:  # raised, so never cached
            raise NotFoundError("Not a member of the project")
        return role

    async def _load_personal_project(self, user_id: uuid.UUID) -> uuid.UUID:
        async with self._factory() as session:
            project_id = await ProjectRepository.from_session(session).personal_project_id(user_id)
        if project_id is None:
            raise NotFoundError("The user has no personal project")
        return project_id
