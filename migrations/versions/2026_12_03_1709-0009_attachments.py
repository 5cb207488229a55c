"""attachments, their deduplicated blobs and resumable upload sessions

Three new tables and two enums; nothing existing changes, so the upgrade takes no lock on a
table in use and the downgrade drops only what the upgrade created (and every attachment
row: the objects in the store are not touched, ``taskstream attachments orphans`` finds them).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 17:09:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ATTACHMENT_STATE = postgresql.ENUM(
    "received",
    "scanning",
    "deduplicating",
    "compressing",
    "stored",
    "quarantined",
    "failed",
    name="attachment_state",
    create_type=False,
)
UPLOAD_SESSION_STATE = postgresql.ENUM(
    "open", "completed", name="upload_session_state", create_type=False
)


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    ]


def upgrade() -> None:
    ATTACHMENT_STATE.create(op.get_bind(), checkfirst=True)
    UPLOAD_SESSION_STATE.create(op.get_bind(), checkfirst=True)
    op.create_table(
        "attachment_blobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("storage_key", sa.String(512), nullable=False),
        sa.Column("stored_size", sa.BigInteger(), nullable=False),
        sa.Column("compression", sa.String(16), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("refcount", sa.Integer(), nullable=False),
        sa.Column("thumbnail_key", sa.String(512), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name="fk_attachment_blobs_project_id_projects",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_attachment_blobs"),
        sa.UniqueConstraint("project_id", "sha256", name="uq_attachment_blobs_project_id_sha256"),
    )
    op.create_table(
        "attachments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("uploader_id", sa.Uuid(), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("storage_name", sa.String(255), nullable=False),
        sa.Column("declared_type", sa.String(255), nullable=True),
        sa.Column("sniffed_type", sa.String(255), nullable=True),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("state", ATTACHMENT_STATE, server_default="received", nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("staging_key", sa.String(512), nullable=False),
        sa.Column("blob_id", sa.Uuid(), nullable=True),
        *_timestamps(),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name="fk_attachments_task_id_tasks", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name="fk_attachments_project_id_projects",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["uploader_id"],
            ["users.id"],
            name="fk_attachments_uploader_id_users",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["blob_id"],
            ["attachment_blobs.id"],
            name="fk_attachments_blob_id_attachment_blobs",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_attachments"),
    )
    op.create_index("ix_attachments_task_id_created_at", "attachments", ["task_id", "created_at"])
    op.create_index("ix_attachments_project_id", "attachments", ["project_id"])
    op.create_index("ix_attachments_blob_id", "attachments", ["blob_id"])
    op.create_index(
        "uq_attachments_task_name_version",
        "attachments",
        ["task_id", "display_name", "version"],
        unique=True,
        postgresql_where=sa.text("version IS NOT NULL"),
    )
    op.create_table(
        "attachment_upload_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("uploader_id", sa.Uuid(), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("declared_type", sa.String(255), nullable=True),
        sa.Column("declared_length", sa.BigInteger(), nullable=False),
        sa.Column("upload_offset", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("parts", postgresql.ARRAY(sa.String(512)), server_default="{}", nullable=False),
        sa.Column("state", UPLOAD_SESSION_STATE, server_default="open", nullable=False),
        sa.Column("attachment_id", sa.Uuid(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        *_timestamps(),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name="fk_attachment_upload_sessions_task_id_tasks",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name="fk_attachment_upload_sessions_project_id_projects",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["uploader_id"],
            ["users.id"],
            name="fk_attachment_upload_sessions_uploader_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_attachment_upload_sessions"),
    )
    op.create_index(
        "ix_attachment_upload_sessions_expires_at", "attachment_upload_sessions", ["expires_at"]
    )


def downgrade() -> None:
    op.drop_table("attachment_upload_sessions")
    op.drop_table("attachments")
    op.drop_table("attachment_blobs")
    UPLOAD_SESSION_STATE.drop(op.get_bind(), checkfirst=True)
    ATTACHMENT_STATE.drop(op.get_bind(), checkfirst=True)
