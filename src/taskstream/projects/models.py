"""Projects, memberships and invitations: low volume, written synchronously by the API."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from taskstream.db import Base, created_at_column, pg_enum
from taskstream.enums import InvitationStatus, ProjectRole


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (
        Index(None, "owner_id"),
        # the purge finds expired soft deletes without reading live projects
        Index(
            "ix_projects_deleted_at",
            "deleted_at",
            postgresql_where=text("deleted_at IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    is_personal: Mapped[bool] = mapped_column(Boolean, server_default="false")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    # readable, takes no new task commands
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # soft-deleted: invisible to everyone, restorable by its owner until purged
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ProjectMember(Base):
    __tablename__ = "project_members"
    __table_args__ = (Index(None, "user_id"),)

    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[ProjectRole] = mapped_column(
        pg_enum(ProjectRole, "project_role"),
        server_default=ProjectRole.MEMBER.value,
    )
    created_at: Mapped[datetime] = created_at_column()


class ProjectInvitation(Base):
    """An invitation of an email address (stored lower-cased) to join a project with a role.

    At most one pending invitation per (project, address): a partial unique index, so two
    concurrent invitations of one address leave one row."""

    __tablename__ = "project_invitations"
    __table_args__ = (
        Index(
            "uq_project_invitations_pending",
            "project_id",
            "email",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
        Index(None, "email"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[ProjectRole] = mapped_column(pg_enum(ProjectRole, "project_role"))
    status: Mapped[InvitationStatus] = mapped_column(
        pg_enum(InvitationStatus, "invitation_status"),
        server_default=InvitationStatus.PENDING.value,
    )
    invited_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    responded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
