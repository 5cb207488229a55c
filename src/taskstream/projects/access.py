"""A short-lived, in-process cache of project roles for the command hot path.

POST /tasks must not query PostgreSQL per request. A stale entry (a member removed within the
last few seconds) can let a command through; that is acceptable because the consumer checks
membership again when it applies the command and rejects it then. Reads and project writes
never use this cache.
"""

from __future__ import annotations

import time
import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.auth.principal import Principal
from taskstream.enums import ProjectRole
from taskstream.errors import ForbiddenError, NotFoundError
from taskstream.projects.repository import ProjectRepository
from taskstream.projects.service import require_project_role, role_at_least

ROLE_TTL_S = 10.0
MAX_ENTRIES = 100_000


class ProjectAccessCache:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._factory = session_factory
        self._roles: dict[tuple[uuid.UUID, uuid.UUID], tuple[ProjectRole, float]] = {}
        self._personal: dict[uuid.UUID, uuid.UUID] = {}

    async def role(
        self, principal: Principal, project_id: uuid.UUID, min_role: ProjectRole
    ) -> ProjectRole:
        """Like ``require_project_role`` but answered from memory for ``ROLE_TTL_S``.
        Only memberships are cached; a refusal is always re-checked."""
        key = (principal.user_id, project_id)
        cached = self._roles.get(key)
        now = time.monotonic()
        if cached is None or cached[1] < now:
            async with self._factory() as session:
                role = await require_project_role(
                    session, principal, project_id, ProjectRole.VIEWER
                )
            if len(self._roles) >= MAX_ENTRIES:
                self._roles.clear()
            self._roles[key] = (role, now + ROLE_TTL_S)
        else:
            role = cached[0]
        if not role_at_least(role, min_role):
            raise ForbiddenError(f"This needs the {min_role.value} role in the project")
        return role

    async def personal_project(self, user_id: uuid.UUID) -> uuid.UUID:
        """The user's personal project id (it never changes, so it is cached for good)."""
        project_id = self._personal.get(user_id)
        if project_id is None:
            async with self._factory() as session:
                project_id = await ProjectRepository.from_session(session).personal_project_id(
                    user_id
                )
            if project_id is None:
                raise NotFoundError("The user has no personal project")
            self._personal[user_id] = project_id
        return project_id
