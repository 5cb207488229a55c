"""All SQL for projects and memberships (invitations: ``invitation_repository.py``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, column, delete, func, select, table, tuple_, update
from sqlalchemy.dialects.postgresql import insert

from taskstream.db import Repository
from taskstream.enums import ProjectRole
from taskstream.projects.models import Project, ProjectMember

# The users table belongs to auth (which depends on projects: registration creates the
# personal project); membership only needs to know that a user exists and is not deleted, and
# the member list shows names, so it reads those columns by name instead of importing auth's
# model.
USERS = table("users", column("id"), column("deleted_at"), column("name"), column("email"))

# (user_id, name, role, joined_at) of one member
MemberRow = Row[uuid.UUID, str, ProjectRole, datetime]
# (archived_at, deleted_at) of a project
LifecycleRow = Row[datetime | None, datetime | None]

_LIVE = Project.deleted_at.is_(None)


class ProjectRepository(Repository):
    async def user_is_active(self, user_id: uuid.UUID) -> bool:
        """The user exists and is not deleted (may be added to a project)."""
        stmt = select(USERS.c.id).where(USERS.c.id == user_id, USERS.c.deleted_at.is_(None))
        return (await self.session.execute(stmt)).first() is not None

    async def add(self, project: Project) -> None:
        self.session.add(project)
        await self.session.flush()

    async def get(self, project_id: uuid.UUID) -> Project | None:
        """A live (not soft-deleted) project."""
        stmt = select(Project).where(Project.id == project_id, _LIVE)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_for_update(self, project_id: uuid.UUID) -> Project | None:
        """A project, deleted or not, locked until the transaction ends and read afresh (an
        earlier read in the session may predate a change committed while this one waited)."""
        stmt = (
            select(Project)
            .where(Project.id == project_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def lifecycle(self, project_id: uuid.UUID) -> LifecycleRow | None:
        stmt = select(Project.archived_at, Project.deleted_at).where(Project.id == project_id)
        return (await self.session.execute(stmt)).first()

    async def personal_project_id(self, user_id: uuid.UUID) -> uuid.UUID | None:
        stmt = (
            select(Project.id)
            .where(Project.owner_id == user_id, Project.is_personal.is_(True))
            .order_by(Project.created_at)
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def owned_named(self, owner_id: uuid.UUID, name: str) -> Project | None:
        """The oldest live project of ``owner_id`` called ``name`` (names are not unique)."""
        stmt = (
            select(Project)
            .where(Project.owner_id == owner_id, Project.name == name, _LIVE)
            .order_by(Project.created_at)
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def member_role(
        self, project_id: uuid.UUID, user_id: uuid.UUID, *, deleted_too: bool = False
    ) -> ProjectRole | None:
        """The user's role in a live project (``deleted_too``: or a soft-deleted one)."""
        stmt = (
            select(ProjectMember.role)
            .join(Project, Project.id == ProjectMember.project_id)
            .where(ProjectMember.project_id == project_id, ProjectMember.user_id == user_id)
        )
        if not deleted_too:
            stmt = stmt.where(_LIVE)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list_for_user(self, user_id: uuid.UUID) -> Sequence[tuple[Project, ProjectRole]]:
        stmt = (
            select(Project, ProjectMember.role)
            .join(ProjectMember, ProjectMember.project_id == Project.id)
            .where(ProjectMember.user_id == user_id, _LIVE)
            .order_by(Project.created_at, Project.id)
        )
        return [(p, r) for p, r in (await self.session.execute(stmt)).all()]

    async def members_page(
        self, project_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> Sequence[MemberRow]:
        """Members in (joined_at, user_id) order after the cursor, with their names."""
        stmt = (
            select(
                ProjectMember.user_id, USERS.c.name, ProjectMember.role, ProjectMember.created_at
            )
            .join(USERS, USERS.c.id == ProjectMember.user_id)
            .where(ProjectMember.project_id == project_id)
        )
        if after is not None:
            stmt = stmt.where(
                tuple_(ProjectMember.created_at, ProjectMember.user_id) > tuple_(*after)
            )
        stmt = stmt.order_by(ProjectMember.created_at, ProjectMember.user_id).limit(limit)
        return list((await self.session.execute(stmt)).all())

    async def owner_count(self, project_id: uuid.UUID) -> int:
        stmt = select(func.count()).where(
            ProjectMember.project_id == project_id, ProjectMember.role == ProjectRole.OWNER
        )
        return int((await self.session.execute(stmt)).scalar_one())

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

    async def set_member_role(
        self, project_id: uuid.UUID, user_id: uuid.UUID, role: ProjectRole
    ) -> bool:
        stmt = (
            update(ProjectMember)
            .where(ProjectMember.project_id == project_id, ProjectMember.user_id == user_id)
            .values(role=role)
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

    async def purge_deleted(self, deleted_before: datetime, limit: int) -> list[uuid.UUID]:
        """Hard-delete up to ``limit`` projects soft-deleted before ``deleted_before``; their
        members, tasks, stats, invitations and webhooks go with them (ON DELETE CASCADE)."""
        due = (
            select(Project.id)
            .where(Project.deleted_at < deleted_before)
            .order_by(Project.deleted_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        stmt = delete(Project).where(Project.id.in_(due)).returning(Project.id)
        return list((await self.session.execute(stmt)).scalars().all())
