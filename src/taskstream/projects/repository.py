"""All SQL for projects and memberships."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import column, delete, select, table
from sqlalchemy.dialects.postgresql import insert

from taskstream.db import Repository
from taskstream.enums import ProjectRole
from taskstream.projects.models import Project, ProjectMember

# The users table belongs to auth (which depends on projects: registration creates the
# personal project); membership only needs to know that a user exists and is not deleted, so
# it reads the two columns by name instead of importing auth's model.
_USERS = table("users", column("id"), column("deleted_at"))


class ProjectRepository(Repository):
    async def user_is_active(self, user_id: uuid.UUID) -> bool:
        """The user exists and is not deleted (may be added to a project)."""
        stmt = select(_USERS.c.id).where(_USERS.c.id == user_id, _USERS.c.deleted_at.is_(None))
        return (await self.session.execute(stmt)).first() is not None

    async def add(self, project: Project) -> None:
        self.session.add(project)
        await self.session.flush()

    async def get(self, project_id: uuid.UUID) -> Project | None:
        return await self.session.get(Project, project_id)

    async def personal_project_id(self, user_id: uuid.UUID) -> uuid.UUID | None:
        stmt = (
            select(Project.id)
            .where(Project.owner_id == user_id, Project.is_personal.is_(True))
            .order_by(Project.created_at)
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def owned_named(self, owner_id: uuid.UUID, name: str) -> Project | None:
        """The oldest project of ``owner_id`` called ``name`` (names are not unique)."""
        stmt = (
            select(Project)
            .where(Project.owner_id == owner_id, Project.name == name)
            .order_by(Project.created_at)
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def member_role(self, project_id: uuid.UUID, user_id: uuid.UUID) -> ProjectRole | None:
        stmt = select(ProjectMember.role).where(
            ProjectMember.project_id == project_id, ProjectMember.user_id == user_id
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list_for_user(self, user_id: uuid.UUID) -> Sequence[tuple[Project, ProjectRole]]:
        stmt = (
            select(Project, ProjectMember.role)
            .join(ProjectMember, ProjectMember.project_id == Project.id)
            .where(ProjectMember.user_id == user_id)
            .order_by(Project.created_at, Project.id)
        )
        return [(p, r) for p, r in (await self.session.execute(stmt)).all()]

    async def add_member(
        self, project_id: uuid.UUID, user_id: uuid.UUID, role: ProjectRole
    ) -> bool:
        """Add a membership; False when the user already is a member."""
        stmt = (
            insert(ProjectMember)
            .values(project_id=project_id, user_id=user_id, role=role)
            .on_conflict_do_nothing(index_elements=["project_id", "user_id"])
            .returning(ProjectMember.user_id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def remove_member(self, project_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        stmt = (
            delete(ProjectMember)
            .where(ProjectMember.project_id == project_id, ProjectMember.user_id == user_id)
            .returning(ProjectMember.user_id)
        )
        return (await self.session.execute(stmt)).first() is not None
