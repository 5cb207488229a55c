"""The overdue sweep: ``task.overdue`` once per task past its deadline (run by the relay)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.messages import DomainEvent
from taskstream.outbox.ids import derived_event_id
from taskstream.outbox.repository import OutboxRepository
from taskstream.tasks.repository import TaskRepository


async def sweep_overdue(session: AsyncSession, limit: int = 500) -> int:
    """Emit ``task.overdue`` once per task past its deadline, in the caller's transaction.

    ``tasks.overdue_notified_at`` is the once-only marker, set in the same transaction as the
    outbox row. (The overdue count of a project is not kept here: it changes with the clock
    and with completion, so it is counted when read.) Returns the number of tasks marked.
    """
    rows = await TaskRepository.from_session(session).claim_overdue(limit)
    if not rows:
        return 0
    now = datetime.now(UTC)
    events = [
        DomainEvent(
            event_id=derived_event_id(row["id"], "task.overdue"),
            type="task.overdue",
            occurred_at=now,
            aggregate_id=row["id"],
            project_id=row["project_id"],
            data={
                "taskId": str(row["id"]),
                "projectId": str(row["project_id"]),
                "title": row["title"],
                "status": str(row["status"]),
                "assigneeId": _str(row["assignee_id"]),
                "reviewerId": _str(row["reviewer_id"]),
                "createdBy": str(row["created_by"]),
                "deadline": row["deadline"].isoformat(),
            },
        )
        for row in rows
    ]
    await OutboxRepository.from_session(session).add(events)
    return len(rows)


def _str(value: object) -> str | None:
    return None if value is None else str(value)
