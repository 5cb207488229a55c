"""Read-side SQL for the API: tasks, pages and project stats as the consumer wrote them.

(The consumer's ``tasks/repository.py`` holds the write-side SQL; this module only reads.)
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Row, and_, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.enums import TaskPriority, TaskStatus
from taskstream.projects.models import ProjectMember
from taskstream.tasks.models import ProjectActivity, ProjectStats, Task

# (project_id, created_by) of a task
TaskOwnership = Row[uuid.UUID, uuid.UUID]


@dataclass(frozen=True, slots=True)
class TaskFilter:
    project_id: uuid.UUID | None = None
    status: TaskStatus | None = None
    assignee_id: uuid.UUID | None = None
    priority: TaskPriority | None = None
    due_before: datetime | None = None


class TaskReadRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> TaskReadRepository:
        return cls(session)

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
            mine = select(ProjectMember.project_id).where(ProjectMember.user_id == member_id)
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

    async def stats(self, project_id: uuid.UUID) -> ProjectStats | None:
        return await self.session.get(ProjectStats, project_id)

    async def activity(self, project_id: uuid.UUID, minutes: int) -> Sequence[ProjectActivity]:
        since = func.now() - timedelta(minutes=minutes)
        stmt = (
            select(ProjectActivity)
            .where(and_(ProjectActivity.project_id == project_id, ProjectActivity.minute >= since))
            .order_by(ProjectActivity.minute)
        )
        return (await self.session.execute(stmt)).scalars().all()


__all__ = ["TaskFilter", "TaskReadRepository"]
