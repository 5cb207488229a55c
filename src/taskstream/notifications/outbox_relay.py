"""The relay's SQL: claim unsent outbox rows, mark them sent, and the overdue-deadline sweep."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.messages import DomainEvent
from taskstream.messaging.models import OutboxEvent
from taskstream.messaging.outbox import OutboxRepository, derived_event_id


@dataclass(frozen=True, slots=True)
class PendingEvent:
    id: int
    event_id: uuid.UUID
    event_type: str
    aggregate_id: uuid.UUID
    payload: bytes
    trace_id: str | None
    created_at: datetime


class OutboxRelayRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> OutboxRelayRepository:
        return cls(session)

    async def claim_unsent(self, limit: int) -> list[PendingEvent]:
        """The oldest unsent rows, locked for this transaction.

        SKIP LOCKED lets several relays run at once: each takes rows the others do not hold.
        """
        stmt = (
            select(
                OutboxEvent.id,
                OutboxEvent.event_id,
                OutboxEvent.event_type,
                OutboxEvent.aggregate_id,
                OutboxEvent.payload,
                OutboxEvent.trace_id,
                OutboxEvent.created_at,
            )
            .where(OutboxEvent.sent_at.is_(None))
            .order_by(OutboxEvent.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [PendingEvent(*row) for row in (await self.session.execute(stmt)).all()]

    async def mark_sent(self, ids: Sequence[int]) -> None:
        # One array parameter rather than an IN list of hundreds of placeholders.
        await self.session.execute(MARK_SENT, {"ids": list(ids)})

    async def unsent_count(self) -> int:
        stmt = select(func.count()).where(OutboxEvent.sent_at.is_(None))
        return int((await self.session.execute(stmt)).scalar_one())


MARK_SENT = text("UPDATE outbox SET sent_at = now() WHERE id = ANY(CAST(:ids AS bigint[]))")

OVERDUE_SQL = text(
    """
    WITH due AS (
        SELECT id FROM tasks
        WHERE deadline < now() AND deleted_at IS NULL AND overdue_notified_at IS NULL
          AND status NOT IN ('done', 'cancelled')
        ORDER BY deadline
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE tasks t SET overdue_notified_at = now()
    FROM due WHERE t.id = due.id
    RETURNING t.id, t.project_id, t.title, t.status, t.assignee_id, t.reviewer_id, t.created_by,
              t.deadline
    """
)


async def sweep_overdue(session: AsyncSession, limit: int = 500) -> int:
    """Emit ``task.overdue`` once per task past its deadline, in the caller's transaction.

    ``tasks.overdue_notified_at`` is the once-only marker, set in the same transaction as the
    outbox row. (The overdue count of a project is not kept here: it changes with the clock
    and with completion, so ``taskstream.tasks.stats`` counts it when read.) Returns tasks
    marked.
    """
    rows = (await session.execute(OVERDUE_SQL, {"limit": limit})).mappings().all()
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
