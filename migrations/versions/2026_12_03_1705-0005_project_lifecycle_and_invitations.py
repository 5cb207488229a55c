"""projects: archived_at, deleted_at (soft delete); project_invitations

Archiving and soft-deleting are timestamps on ``projects`` (null: live). Invitations are their
own table: one pending invitation per (project, lower-cased address) is a partial unique
index, so two concurrent invitations of one address leave one row. Adding two nullable
columns is a catalogue change only (no table rewrite).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 17:05:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INVITATION_STATUS = postgresql.ENUM(
    "pending", "accepted", "declined", "revoked", "expired", name="invitation_status"
)
PROJECT_ROLE = postgresql.ENUM(name="project_role", create_type=False)


def upgrade() -> None:
    op.add_column("projects", sa.Column("archived_at", sa.DateTime(timezone=True)))
    op.add_column("projects", sa.Column("deleted_at", sa.DateTime(timezone=True)))
    op.create_index(
        "ix_projects_deleted_at",
        "projects",
        ["deleted_at"],
        postgresql_where=sa.text("deleted_at IS NOT NULL"),
    )
    INVITATION_STATUS.create(op.get_bind())
    op.create_table(
        "project_invitations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", PROJECT_ROLE, nullable=False),
        sa.Column(
            "status",
            postgresql.ENUM(name="invitation_status", create_type=False),
            server_default="pending",
            nullable=False,
        ),
        sa.Column("invited_by", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_invitations_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["invited_by"],
            ["users.id"],
            name=op.f("fk_project_invitations_invited_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_invitations")),
    )
    op.create_index(
        "uq_project_invitations_pending",
        "project_invitations",
        ["project_id", "email"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        op.f("ix_project_invitations_email"), "project_invitations", ["email"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_project_invitations_email"), table_name="project_invitations")
    op.drop_index("uq_project_invitations_pending", table_name="project_invitations")
    op.drop_table("project_invitations")
    INVITATION_STATUS.drop(op.get_bind())
    op.drop_index("ix_projects_deleted_at", table_name="projects")
    op.drop_column("projects", "deleted_at")
    op.drop_column("projects", "archived_at")
