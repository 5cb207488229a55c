"""Where a command's status lives: PostgreSQL once settled, Redis while only accepted."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.command_status.records import accepted_key, decode_accepted

_READ_STATUS = text(
    "SELECT status::text, reason, task_id, actor_id FROM command_statuses "
    "WHERE command_id = :command_id"
)


@dataclass(frozen=True, slots=True)
class CommandRecord:
    command_id: uuid.UUID
    status: str
    reason: str | None
    task_id: uuid.UUID | None
    actor_id: uuid.UUID


class CommandStatusRepository:
    def __init__(self, session: AsyncSession, redis: Redis | None) -> None:
        self.session = session
        self.redis = redis

    async def settled(self, command_id: uuid.UUID) -> CommandRecord | None:
        """The applied/rejected row, if the consumer wrote it."""
        row = (await self.session.execute(_READ_STATUS, {"command_id": command_id})).one_or_none()
        if row is None:
            return None
        status, reason, task_id, actor_id = row
        return CommandRecord(command_id, status, reason, task_id, actor_id)

    async def accepted(self, command_id: uuid.UUID) -> CommandRecord | None:
        """The API's "accepted" record; None when absent, unreadable or Redis is down."""
        if self.redis is None:
            return None
        try:
            raw = await self.redis.get(accepted_key(command_id))
        except (RedisError, OSError):
            return None
        if raw is None:
            return None
        record = decode_accepted(raw)
        if record is None:
            return None
        return CommandRecord(command_id, "accepted", None, record.task_id, record.actor_id)

    async def release(self) -> None:
        """End the read transaction so no pooled connection is held while waiting."""
        await self.session.rollback()
