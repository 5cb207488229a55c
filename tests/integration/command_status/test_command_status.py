"""Command status service: applied/rejected from PostgreSQL, accepted from Redis, actor-only,
and `wait` woken by the apply transaction's NOTIFY."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import msgspec
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.command_status.records import accepted_key
from taskstream.command_status.repository import CommandStatusRepository
from taskstream.command_status.service import get_command_status
from taskstream.command_status.waiter import SettledListener
from taskstream.db import transaction
from taskstream.enums import UserRole
from taskstream.errors import NotFoundError
from taskstream.infra.probes import asyncpg_dsn
from taskstream.messages import TaskCommand, UpdateTask
from taskstream.principal import Principal
from taskstream.settings import Settings
from taskstream.tasks.apply import apply_task_commands
from tests.integration.consumers.stream_support import (
    Team,
    command_on,
    create_command,
    dsn_of,
    seed_team,
)

Factory = async_sessionmaker[AsyncSession]


@pytest.fixture
async def team(database: str) -> Team:
    return await seed_team(dsn_of(database))


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis.url)
    yield client
    await client.aclose()


@pytest.fixture
async def listener(database: str) -> AsyncIterator[SettledListener]:
    waiter = SettledListener(asyncpg_dsn(database))
    yield waiter
    await waiter.close()


async def accept(redis: Redis, command: TaskCommand) -> None:
    record = {
        "actorId": str(command.actor.user_id),
        "taskId": str(command.task_id),
        "type": command.type,
        "acceptedAt": datetime.now(UTC).isoformat(),
    }
    await redis.set(accepted_key(command.command_id), msgspec.json.encode(record), ex=60)


async def apply(factory: Factory, *commands: TaskCommand) -> None:
    async with transaction(factory) as session:
        await apply_task_commands(session, list(commands))


def member(user: uuid.UUID) -> Principal:
    return Principal(user_id=user, role=UserRole.MEMBER)


async def status(factory: Factory, redis: Redis, who: Principal, command_id: uuid.UUID, **kw):
    async with factory() as session:
        return await get_command_status(
            CommandStatusRepository(session, redis), who, command_id, **kw
        )


async def test_accepted_then_applied_then_rejected_with_reason(
    session_factory: Factory, redis: Redis, team: Team
) -> None:
    create = create_command(team, "status")
    owner = member(team.owner)
    await accept(redis, create)
    view = await status(session_factory, redis, owner, create.command_id)
    assert (view.status, view.task_id, view.reason) == ("accepted", create.task_id, None)

    await apply(session_factory, create)
    view = await status(session_factory, redis, owner, create.command_id)
    assert view.status == "applied"

    bad = command_on(team, uuid.uuid4(), UpdateTask(title="nope"))
    await apply(session_factory, bad)
    view = await status(session_factory, redis, owner, bad.command_id)
    assert (view.status, view.reason) == ("rejected", "task not found")
    assert msgspec.json.decode(msgspec.json.encode(view)).keys() == {
        "commandId",
        "status",
        "taskId",
        "reason",
    }


async def test_only_the_actor_or_an_admin_sees_a_command(
    session_factory: Factory, redis: Redis, team: Team
) -> None:
    pending = create_command(team, "pending")
    done = create_command(team, "done")
    await accept(redis, pending)
    await apply(session_factory, done)
    for command_id in (pending.command_id, done.command_id, uuid.uuid4()):
        with pytest.raises(NotFoundError):
            await status(session_factory, redis, member(team.members[0]), command_id)
    admin = Principal(user_id=uuid.uuid4(), role=UserRole.ADMIN)
    assert (await status(session_factory, redis, admin, done.command_id)).status == "applied"
    assert (await status(session_factory, redis, admin, pending.command_id)).status == "accepted"


async def test_wait_returns_as_soon_as_the_batch_commits(
    session_factory: Factory, redis: Redis, team: Team, listener: SettledListener
) -> None:
    create = create_command(team, "waited for")
    await accept(redis, create)

    async def apply_later() -> None:
        await asyncio.sleep(0.5)
        await apply(session_factory, create)

    started = time.monotonic()
    applier = asyncio.create_task(apply_later())
    view = await status(
        session_factory, redis, member(team.owner), create.command_id, wait_s=10, listener=listener
    )
    await applier
    assert view.status == "applied"
    assert time.monotonic() - started < 5  # woken by NOTIFY, not by the 10 s limit

    other = create_command(team, "never applied")
    await accept(redis, other)
    started = time.monotonic()
    view = await status(
        session_factory, redis, member(team.owner), other.command_id, wait_s=0.5, listener=listener
    )
    assert view.status == "accepted"
    assert time.monotonic() - started >= 0.5
