"""refresh sessions: absolute lifetime and the sealed successor pair

``authenticated_at`` is the login that started a family of rotated refresh tokens: the family
ends ``auth.refresh_session_max_age_s`` after it. Existing rows take the creation time of the
oldest token still stored in their family, the closest record of that login there is.
``successor_sealed`` keeps, for the reuse grace window, the pair a rotation issued, encrypted
under a key derived from the rotated token (which is never stored).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 14:50:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("refresh_sessions", sa.Column("authenticated_at", sa.DateTime(timezone=True)))
    op.add_column("refresh_sessions", sa.Column("successor_sealed", sa.LargeBinary()))
    op.execute(
        """
        UPDATE refresh_sessions AS r SET authenticated_at = f.started
        FROM (SELECT family_id, min(created_at) AS started
              FROM refresh_sessions GROUP BY family_id) AS f
        WHERE r.family_id = f.family_id
        """
    )
    op.alter_column("refresh_sessions", "authenticated_at", nullable=False)


def downgrade() -> None:
    op.drop_column("refresh_sessions", "successor_sealed")
    op.drop_column("refresh_sessions", "authenticated_at")
