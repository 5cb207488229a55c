"""users: email unique ignoring case (unique index on lower(email))

Replaces the case-sensitive ``uq_users_email``: "Ada@example.com" and "ada@example.com" are one
mailbox, and only the database can refuse the second of two concurrent registrations.

Existing case-duplicates are not merged here: which account keeps the address (and what
becomes of the other's projects, tasks and sessions) is a decision for a person. The upgrade
refuses loudly, before changing anything, and names the query that lists them; rename or
merge those accounts, then run it again. Building the index blocks writes to ``users`` (not
reads) while it runs: seconds for millions of rows.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 15:10:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DUPLICATES = "SELECT lower(email) FROM users GROUP BY lower(email) HAVING count(*) > 1"
COUNT_DUPLICATES = sa.text(f"SELECT count(*) FROM ({DUPLICATES}) AS d")  # noqa: S608 - constant


class CaseDuplicateEmailsError(RuntimeError):
    pass


def upgrade() -> None:
    # No other registration may slip in between the check and the index.
    op.execute("LOCK TABLE users IN SHARE MODE")
    duplicated = op.get_bind().execute(COUNT_DUPLICATES).scalar()
    if duplicated:
        raise CaseDuplicateEmailsError(
            f"{duplicated} email address(es) belong to more than one user when case is ignored;"
            f" list them with: {DUPLICATES}; rename or merge those accounts, then upgrade again"
        )
    op.create_index("uq_users_email_lower", "users", [sa.text("lower(email)")], unique=True)
    op.drop_constraint("uq_users_email", "users", type_="unique")


def downgrade() -> None:
    op.create_unique_constraint("uq_users_email", "users", ["email"])
    op.drop_index("uq_users_email_lower", table_name="users")
