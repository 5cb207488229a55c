"""comments on tasks; task_events indexed by (project_id, id) for the activity feed

Adds ``comments`` (soft-deleted, paginated per task on (task_id, created_at, id)) and the
index the project feed reads newest first. ``task_events`` grows with every applied command:
its index is built CONCURRENTLY, so the consumer keeps writing while it builds (a plain
CREATE INDEX would block its inserts for the whole build). An interrupted concurrent build
leaves an INVALID index; the upgrade drops it before building, so running it again
repairs that.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 17:20:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FEED_INDEX = "ix_task_events_project_id_id"


def upgrade() -> None:
    # First, outside the migration's transaction: if the build is interrupted, nothing else
    # has been done and the next run starts over.
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {FEED_INDEX}")
        op.create_index(
            FEED_INDEX, "task_events", ["project_id", "id"], postgresql_concurrently=True
        )
    op.create_table(
        "comments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name="fk_comments_author_id_users", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name="fk_comments_project_id_projects",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name="fk_comments_task_id_tasks", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_comments"),
    )
    op.create_index(
        "ix_comments_task_id_created_at_id", "comments", ["task_id", "created_at", "id"]
    )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(FEED_INDEX, table_name="task_events", postgresql_concurrently=True)
    op.drop_index("ix_comments_task_id_created_at_id", table_name="comments")
    op.drop_table("comments")
