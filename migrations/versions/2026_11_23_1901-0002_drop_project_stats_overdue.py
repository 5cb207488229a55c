"""drop project_stats.overdue (computed when read)

The overdue count of a project changes with the clock and with completion, so it is counted
from the tasks when read (taskstream.tasks.stats.count_overdue); the stored counter, which
only the overdue sweep ever incremented, could not stay right.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 19:01:21.087234+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_column("project_stats", "overdue")


def downgrade() -> None:
    op.add_column(
        "project_stats",
        sa.Column(
            "overdue",
            sa.INTEGER(),
            server_default=sa.text("0"),
            autoincrement=False,
            nullable=False,
        ),
    )
