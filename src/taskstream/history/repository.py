"""All SQL of task history: pages of ``task_events`` by task (oldest first) and by project
(newest first), with the actor's name and the task's title."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from taskstream.auth.models import User
from taskstream.db import Repository
from taskstream.tasks.models import Task, TaskEvent


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    task_id: uuid.UUID
    task_title: str
    project_id: uuid.UUID
    type: str
    actor_id: uuid.UUID
    actor_name: str | None
    occurred_at: datetime
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    command_id: uuid.UUID


def _events() -> Select[Any]:
    return (
        select(
            TaskEvent.id,
            TaskEvent.task_id,
            Task.title,
            TaskEvent.project_id,
            TaskEvent.event_type,
            TaskEvent.actor_id,
            User.name,
            TaskEvent.occurred_at,
            TaskEvent.before,
            TaskEvent.after,
            TaskEvent.command_id,
        )
        .join(Task, Task.id == TaskEvent.task_id)
        .outerjoin(User, User.id == TaskEvent.actor_id)
    )


class HistoryRepository(Repository):
    async def task_project(self, task_id: uuid.UUID) -> uuid.UUID | None:
        """The project of a stored task, deleted or not."""
        stmt = select(Task.project_id).where(Task.id == task_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def task_page(
        self, task_id: uuid.UUID, *, after: int | None, limit: int
    ) -> Sequence[EventRow]:
        """A task's audit rows in id (application) order after the cursor: ix (task_id, id)."""
        stmt = _events().where(TaskEvent.task_id == task_id)
        if after is not None:
            stmt = stmt.where(TaskEvent.id > after)
        stmt = stmt.order_by(TaskEvent.id).limit(limit)
        return [EventRow(*row) for row in (await self.session.execute(stmt)).all()]

    async def project_page(
        self, project_id: uuid.UUID, *, before: int | None, limit: int
    ) -> Sequence[EventRow]:
        """A project's audit rows, newest first, before the cursor: ix (project_id, id)."""
        stmt = _events().where(TaskEvent.project_id == project_id)
        if before is not None:
            stmt = stmt.where(TaskEvent.id < before)
        stmt = stmt.order_by(TaskEvent.id.desc()).limit(limit)
        return [EventRow(*row) for row in (await self.session.execute(stmt)).all()]
