"""Write domain events to the outbox inside the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.messages import DomainEvent, encode_event
from taskstream.messaging.models import OutboxEvent

# Event ids derived from their cause stay stable if the cause is ever processed again.
EVENT_NAMESPACE = uuid.UUID("6f0d7f57-3d8c-4a51-9c1f-3f5d1c0b7a10")


def derived_event_id(cause_id: uuid.UUID, event_type: str, discriminator: str = "") -> uuid.UUID:
    return uuid.uuid5(EVENT_NAMESPACE, f"{cause_id}:{event_type}:{discriminator}")


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> OutboxRepository:
        return cls(session)

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
