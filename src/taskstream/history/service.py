"""Task history: the audit trail of one task and a project's activity feed, for members of
the project (any role; admins everywhere). Both read ``task_events``, which the command
consumer writes for every applied command and the comment service for every comment write."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.errors import NotFoundError
from taskstream.history.repository import EventRow, HistoryRepository
from taskstream.principal import Principal
from taskstream.projects.service import require_project_role


async def task_events(
    session: AsyncSession,
    principal: Principal,
    task_id: uuid.UUID,
    *,
    after: int | None,
    limit: int,
) -> tuple[Sequence[EventRow], bool]:
    """A page of a task's history, oldest first, and whether more follow. A deleted task keeps
    its history (who deleted it is part of it); a task the caller cannot see is 404, exactly
    like a random id."""
    repo = HistoryRepository.from_session(session)
    project_id = await repo.task_project(task_id)
    if project_id is None:
        raise NotFoundError("Task not found")
    try:
        await require_project_role(session, principal, project_id)
    except NotFoundError:
        raise NotFoundError("Task not found") from None
    rows = await repo.task_page(task_id, after=after, limit=limit + 1)
    return rows[:limit], len(rows) > limit


async def project_activity(
    session: AsyncSession,
    principal: Principal,
    project_id: uuid.UUID,
    *,
    before: int | None,
    limit: int,
) -> tuple[Sequence[EventRow], bool]:
    """A page of everything that happened to a project's tasks, newest first, and whether
    more follow."""
    await require_project_role(session, principal, project_id)
    rows = await HistoryRepository.from_session(session).project_page(
        project_id, before=before, limit=limit + 1
    )
    return rows[:limit], len(rows) > limit
