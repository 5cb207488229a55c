"""All SQL on the outbox: append events in the caller's transaction, claim unsent rows for the
relay and mark them sent."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert

from taskstream.db import Repository
from taskstream.messages import DomainEvent, encode_event
from taskstream.outbox.models import OutboxEvent

# The row shape of ``OutboxRepository.copy``: the applier builds these tuples directly.
OUTBOX_COLUMNS = ("event_id", "event_type", "aggregate_id", "payload", "trace_id")
OutboxRecord = tuple[uuid.UUID, str, uuid.UUID, bytes, str | None]

# The age is measured by the database's clock, the one that wrote created_at. The count walks
# the partial index of unsent rows (ix_outbox_unsent): cheap unless the relay is far behind.
_UNSENT_SUMMARY = text(
    "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - (SELECT created_at"
    " FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT 1)), 0)"
    " FROM outbox WHERE sent_at IS NULL"
)
_MARK_SENT = text("UPDATE outbox SET sent_at = now() WHERE id = ANY(CAST(:ids AS bigint[]))")


def outbox_record(event: DomainEvent) -> OutboxRecord:
    """The row written for ``event`` (``OUTBOX_COLUMNS``)."""
    return (event.event_id, event.type, event.aggregate_id, encode_event(event), event.trace_id)


@dataclass(frozen=True, slots=True)
class PendingEvent:
    id: int
    event_id: uuid.UUID
    event_type: str
    aggregate_id: uuid.UUID
    payload: bytes
    trace_id: str | None
    created_at: datetime


class OutboxRepository(Repository):
    async def add(self, events: Sequence[DomainEvent]) -> None:
        """Append events (one statement); an event id already present is ignored."""
        if not events:
            return
        rows = [
            {
                "event_id": e.event_id,
                "event_type": e.type,
                "aggregate_id": e.aggregate_id,
                "payload": encode_event(e),
                "trace_id": e.trace_id,
            }
            for e in events
        ]
        stmt = insert(OutboxEvent).values(rows).on_conflict_do_nothing(index_elements=["event_id"])
        await self.session.execute(stmt)

    async def copy(self, rows: Sequence[OutboxRecord]) -> None:
        """Append rows by COPY, for events whose ids cannot exist yet (derived from causes
        claimed in this transaction's inbox); a duplicate id aborts the transaction."""
        await self.copy_rows("outbox", OUTBOX_COLUMNS, rows)

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
        await self.session.execute(_MARK_SENT, {"ids": list(ids)})

    async def unsent_summary(self) -> tuple[int, float]:
        """How many rows wait for the relay, and the age in seconds of the oldest (0: none)."""
        count, age = (await self.session.execute(_UNSENT_SUMMARY)).one()
        return int(count), float(age)

    async def unsent_count(self) -> int:
        stmt = select(func.count()).where(OutboxEvent.sent_at.is_(None))
        return int((await self.session.execute(stmt)).scalar_one())

    async def backlog(self) -> tuple[int, float | None]:
        """Unsent rows and the age in seconds of the oldest one (None when all are sent)."""
        stmt = select(
            func.count(),
            func.extract("epoch", func.now() - func.min(OutboxEvent.created_at)),
        ).where(OutboxEvent.sent_at.is_(None))
        count, age = (await self.session.execute(stmt)).one()
        return int(count), None if age is None else float(age)
