"""tasks: full-text search index, and the indexes of the list sorts and filters

- ``ix_tasks_search``: GIN over ``to_tsvector('simple', title || ' ' || description)`` (the
  document in ``taskstream/tasks/search.py``); chosen over a pg_trgm index by the benchmark in
  BENCHMARKS.md ("Task search").
- keyset sorts within a project: (project_id, updated_at, id), (project_id, priority, id) and
  (project_id, coalesce(deadline, 'infinity'), id) (no deadline sorts as infinitely far).
- no index for the createdBy / reviewerId / updatedSince / overdue filters: within a project
  they filter the rows of the sort index; each btree costs every task insert (BENCHMARKS.md).

Plain CREATE INDEX (not CONCURRENTLY: Alembic runs in a transaction): it blocks writes to
``tasks`` (not reads) while it runs; the GIN build is the long one (about a minute per million
tasks on the benchmark machine). On a large production table, build these by hand with
CREATE INDEX CONCURRENTLY under the same names first; the upgrade then skips them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 17:08:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH_DOCUMENT = (
    "to_tsvector('simple'::regconfig, (title::text || ' '::text) || "
    "COALESCE(description, ''::text))"
)
DEADLINE_SORT_KEY = "COALESCE(deadline, 'infinity'::timestamp with time zone)"

INDEXES = (
    ("ix_tasks_project_id_updated_at_id", "(project_id, updated_at, id)"),
    ("ix_tasks_project_id_priority_id", "(project_id, priority, id)"),
    ("ix_tasks_project_deadline", f"(project_id, ({DEADLINE_SORT_KEY}), id)"),
    ("ix_tasks_search", f"USING gin (({SEARCH_DOCUMENT}))"),
)


def upgrade() -> None:
    for name, definition in INDEXES:
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON tasks {definition}")


def downgrade() -> None:
    for name, _ in reversed(INDEXES):
        op.execute(f"DROP INDEX IF EXISTS {name}")
