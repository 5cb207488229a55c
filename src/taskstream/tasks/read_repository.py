"""Read-side SQL of tasks for the API: tasks, pages and project stats as the consumer wrote
them (the write side is ``repository.py``)."""

# SQL text below interpolates module constants (column lists, the overdue rule) only, never input.
# ruff: noqa: S608

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Row, select, text, tuple_

from taskstream.db import Repository
from taskstream.enums import TaskPriority, TaskStatus
from taskstream.projects.models import Project, ProjectMember
from taskstream.tasks.models import Task
from taskstream.tasks.repository import OVERDUE_CONDITION
from taskstream.tasks.stats import COUNTER_COLUMNS

# (project_id, created_by) of a task
TaskOwnership = Row[uuid.UUID, uuid.UUID]


@dataclass(frozen=True, slots=True)
class TaskFilter:
    project_id: uuid.UUID | None = None
    status: TaskStatus | None = None
    assignee_id: uuid.UUID | None = None
    priority: TaskPriority | None = None
    due_before: datetime | None = None


_COUNT_OVERDUE = (
    f"SELECT count(*) FROM tasks t WHERE t.project_id = :project AND {OVERDUE_CONDITION}"
)

_READ_STATS = text(
    f"""
    SELECT {", ".join(COUNTER_COLUMNS)}, s.updated_at, ({_COUNT_OVERDUE}) AS overdue
    FROM projects p LEFT JOIN project_stats s ON s.project_id = p.id
    WHERE p.id = :project
    """
)

_READ_ACTIVITY = text(
    """
    SELECT minute, created, completed FROM project_activity
    WHERE project_id = :project AND minute >= :since ORDER BY minute
    """
)


@dataclass(frozen=True, slots=True)
class ProjectStatsRow:
    """A project's counters (zero before its first task), overdue count and recent activity."""

    counters: dict[str, int]
    overdue: int
    updated_at: datetime | None
    activity: list[tuple[datetime, int, int]]


class TaskReadRepository(Repository):
    async def get(self, task_id: uuid.UUID) -> Task | None:
        stmt = select(Task).where(Task.id == task_id, Task.deleted_at.is_(None))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def ownership(self, task_id: uuid.UUID) -> TaskOwnership | None:
        """(project_id, created_by) of a live task."""
        stmt = select(Task.project_id, Task.created_by).where(
            Task.id == task_id, Task.deleted_at.is_(None)
        )
        return (await self.session.execute(stmt)).first()

    async def is_deleted(self, task_id: uuid.UUID) -> bool:
        """True when the task was stored and has since been deleted."""
        stmt = select(Task.id).where(Task.id == task_id, Task.deleted_at.is_not(None))
        return (await self.session.execute(stmt)).first() is not None

    async def page(
        self,
        filters: TaskFilter,
        *,
        member_id: uuid.UUID | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[Task]:
        """Tasks in (created_at, id) order after the cursor; ``member_id`` restricts to that
        user's projects (None: an admin, everything)."""
        stmt = select(Task).where(Task.deleted_at.is_(None))
        if filters.project_id is not None:
            stmt = stmt.where(Task.project_id == filters.project_id)
        if member_id is not None:
            mine = (
                select(ProjectMember.project_id)
                .join(Project, Project.id == ProjectMember.project_id)
                .where(ProjectMember.user_id == member_id, Project.deleted_at.is_(None))
            )
            stmt = stmt.where(Task.project_id.in_(mine))
        if filters.status is not None:
            stmt = stmt.where(Task.status == filters.status)
        if filters.assignee_id is not None:
            stmt = stmt.where(Task.assignee_id == filters.assignee_id)
        if filters.priority is not None:
            stmt = stmt.where(Task.priority == filters.priority)
        if filters.due_before is not None:
            stmt = stmt.where(Task.deadline < filters.due_before)
        if after is not None:
            stmt = stmt.where(tuple_(Task.created_at, Task.id) > tuple_(*after))
        stmt = stmt.order_by(Task.created_at, Task.id).limit(limit)
        return (await self.session.execute(stmt)).scalars().all()

    async def count_overdue(self, project_id: uuid.UUID) -> int:
        """Open tasks of the project whose deadline has passed, as of now."""
        result = await self.session.execute(text(_COUNT_OVERDUE), {"project": project_id})
        return int(result.scalar_one())

    async def project_stats(self, project_id: uuid.UUID, since: datetime) -> ProjectStatsRow | None:
        """Counters of one project plus its per-minute activity since ``since``; None when
        the project does not exist."""
        row = (await self.session.execute(_READ_STATS, {"project": project_id})).one_or_none()
        if row is None:
            return None
        *counters, updated_at, overdue = row
        rows = await self.session.execute(_READ_ACTIVITY, {"project": project_id, "since": since})
        return ProjectStatsRow(
            counters={c: int(v or 0) for c, v in zip(COUNTER_COLUMNS, counters, strict=True)},
            overdue=int(overdue or 0),
            updated_at=updated_at,
            activity=[(m, c, d) for m, c, d in rows],
        )
