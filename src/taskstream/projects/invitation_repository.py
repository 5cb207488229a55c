"""All SQL for project invitations."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, ScalarSelect, func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert

from taskstream.db import Repository
from taskstream.enums import InvitationStatus, ProjectRole
from taskstream.projects.models import Project, ProjectInvitation
from taskstream.projects.repository import USERS

# an invitation and the name of its project
InvitationRow = Row[ProjectInvitation, str]

_PENDING = ProjectInvitation.status == InvitationStatus.PENDING


def _caller_email(user_id: uuid.UUID) -> ScalarSelect[str]:
    return (
        select(func.lower(USERS.c.email))
        .where(USERS.c.id == user_id, USERS.c.deleted_at.is_(None))
        .scalar_subquery()
    )


class InvitationRepository(Repository):
    async def active_user_with_email(self, email: str) -> uuid.UUID | None:
        """The live user whose address is ``email`` (lower-cased), if any."""
        stmt = select(USERS.c.id).where(
            func.lower(USERS.c.email) == email, USERS.c.deleted_at.is_(None)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def expire_lapsed(self, project_id: uuid.UUID, email: str, now: datetime) -> None:
        """Mark a lapsed pending invitation of the address expired, so a new one can be made."""
        await self.session.execute(
            update(ProjectInvitation)
            .where(
                ProjectInvitation.project_id == project_id,
                ProjectInvitation.email == email,
                _PENDING,
                ProjectInvitation.expires_at <= now,
            )
            .values(status=InvitationStatus.EXPIRED)
        )

    async def add_pending(self, invitation: ProjectInvitation) -> bool:
        """Insert a pending invitation; False when one is pending for (project, email)."""
        stmt = (
            insert(ProjectInvitation)
            .values(
                id=invitation.id,
                project_id=invitation.project_id,
                email=invitation.email,
                role=invitation.role,
                invited_by=invitation.invited_by,
                created_at=invitation.created_at,
                expires_at=invitation.expires_at,
            )
            .on_conflict_do_nothing(
                index_elements=["project_id", "email"], index_where=text("status = 'pending'")
            )
            .returning(ProjectInvitation.id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def project_page(
        self,
        project_id: uuid.UUID,
        now: datetime,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[ProjectInvitation]:
        """Pending, unexpired invitations of a project in (created_at, id) order."""
        stmt = select(ProjectInvitation).where(
            ProjectInvitation.project_id == project_id, _PENDING, ProjectInvitation.expires_at > now
        )
        if after is not None:
            stmt = stmt.where(
                tuple_(ProjectInvitation.created_at, ProjectInvitation.id) > tuple_(*after)
            )
        stmt = stmt.order_by(ProjectInvitation.created_at, ProjectInvitation.id).limit(limit)
        return (await self.session.execute(stmt)).scalars().all()

    async def pending_role(
        self, project_id: uuid.UUID, invitation_id: uuid.UUID
    ) -> ProjectRole | None:
        """The role a pending invitation of the project grants; None if there is none."""
        stmt = select(ProjectInvitation.role).where(
            ProjectInvitation.id == invitation_id,
            ProjectInvitation.project_id == project_id,
            _PENDING,
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def revoke(self, project_id: uuid.UUID, invitation_id: uuid.UUID, now: datetime) -> bool:
        stmt = (
            update(ProjectInvitation)
            .where(
                ProjectInvitation.id == invitation_id,
                ProjectInvitation.project_id == project_id,
                _PENDING,
            )
            .values(status=InvitationStatus.REVOKED, responded_at=now)
            .returning(ProjectInvitation.id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def mine_page(
        self,
        user_id: uuid.UUID,
        now: datetime,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[InvitationRow]:
        """Pending, unexpired invitations of the user's address to live projects."""
        stmt = (
            select(ProjectInvitation, Project.name)
            .join(Project, Project.id == ProjectInvitation.project_id)
            .where(
                ProjectInvitation.email == _caller_email(user_id),
                _PENDING,
                ProjectInvitation.expires_at > now,
                Project.deleted_at.is_(None),
            )
        )
        if after is not None:
            stmt = stmt.where(
                tuple_(ProjectInvitation.created_at, ProjectInvitation.id) > tuple_(*after)
            )
        stmt = stmt.order_by(ProjectInvitation.created_at, ProjectInvitation.id).limit(limit)
        return list((await self.session.execute(stmt)).all())

    async def answer(
        self, invitation_id: uuid.UUID, user_id: uuid.UUID, status: InvitationStatus, now: datetime
    ) -> tuple[uuid.UUID, ProjectRole] | None:
        """Accept or decline a pending, unexpired invitation of the user's address to a live
        project: (project id, role), or None. The row lock makes one of concurrent answers win."""
        live = select(Project.id).where(Project.deleted_at.is_(None))
        stmt = (
            update(ProjectInvitation)
            .where(
                ProjectInvitation.id == invitation_id,
                ProjectInvitation.email == _caller_email(user_id),
                _PENDING,
                ProjectInvitation.expires_at > now,
                ProjectInvitation.project_id.in_(live),
            )
            .values(status=status, responded_at=now)
            .returning(ProjectInvitation.project_id, ProjectInvitation.role)
        )
        row = (await self.session.execute(stmt)).first()
        return (row[0], row[1]) if row else None

    async def addressed_to(
        self, invitation_id: uuid.UUID, user_id: uuid.UUID
    ) -> ProjectInvitation | None:
        """The invitation if it is addressed to the user (any status), for telling "already
        answered" from "not yours"."""
        stmt = select(ProjectInvitation).where(
            ProjectInvitation.id == invitation_id,
            ProjectInvitation.email == _caller_email(user_id),
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()
