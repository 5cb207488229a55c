"""The publishing side of task commands: authorise, build envelopes, publish, record.

The API never writes tasks. It checks what it can cheaply (membership, input) and publishes a
``TaskCommand``; the consumer applies it and re-checks every rule against the database, so a
stale membership cache here can only let through a command that is rejected later.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.auth.principal import Principal
from taskstream.enums import ProjectRole
from taskstream.errors import ForbiddenError, NotFoundError, UnavailableError
from taskstream.kafka import CommandPublisher
from taskstream.messages import Actor, CommandPayload, CreateTask, TaskCommand, new_command
from taskstream.projects.access import ProjectAccessCache
from taskstream.projects.service import role_at_least
from taskstream.tasks.reads import TaskOwnership, TaskReadRepository

logger = logging.getLogger(__name__)

DEFAULT_ACCEPTED_TTL_S = 24 * 3600
# Task ids derived from an Idempotency-Key (uuid5); random ones are uuid7 (time-ordered).
DERIVED_ID_VERSION = 5
# A task id derived from an Idempotency-Key carries no time: after a Redis restart older than
# this, a create accepted before it has long been applied (consumer lag is seconds).
DERIVED_ID_LOSS_WINDOW = timedelta(minutes=10)
# How far the clocks of the API host that minted a task id and the one reading it may differ.
MINT_CLOCK_SKEW = timedelta(seconds=5)


def minted_at(task_id: uuid.UUID) -> datetime | None:
    """When a uuid7 task id was minted (its first 48 bits are Unix milliseconds)."""
    if task_id.version != 7:
        return None
    return datetime.fromtimestamp((task_id.int >> 80) / 1000, UTC)


def accepted_key(command_id: uuid.UUID) -> str:
    """Redis key read by ``GET /commands/{id}`` (issue 4) until the command is applied."""
    return f"taskstream:cmd:{command_id}"


def task_project_key(task_id: uuid.UUID) -> str:
    """Where an accepted-but-not-yet-applied task's project is remembered, so PATCH etc.
    right after POST /tasks can be authorised before the consumer has written the row."""
    return f"taskstream:task-project:{task_id}"


class AcceptedCommand(msgspec.Struct, rename="camel"):
    actor_id: uuid.UUID
    task_id: uuid.UUID
    type: str
    accepted_at: datetime


_encoder = msgspec.json.Encoder()


# One EVALSHA per flush instead of two SETs per command: redis-py spends most of a pipelined
# command's cost packing it and parsing its reply in Python, and Redis parses one command.
_RECORD_SCRIPT = """
for i, key in ipairs(KEYS) do
    redis.call('SET', key, ARGV[i + 1], 'EX', ARGV[1])
end
return #KEYS
"""


async def record_accepted(
    redis: Redis,
    commands: Sequence[TaskCommand],
    ttl_s: int = DEFAULT_ACCEPTED_TTL_S,
    script: AsyncScript | None = None,
) -> None:
    """Record commands the broker acknowledged as "accepted" in one round trip:
    ``taskstream:cmd:{commandId}`` -> ``{"actorId","taskId","type","acceptedAt"}`` (and, for
    creates, ``taskstream:task-project:{taskId}`` -> project id).

    Best effort: the command is already durable in Kafka, so a Redis failure is logged and
    never turns the 202 into an error (the status just reads as unknown until applied)."""
    now = datetime.now(UTC)
    keys: list[str] = []
    values: list[bytes | str] = []
    for command in commands:
        record = AcceptedCommand(command.actor.user_id, command.task_id, command.type, now)
        keys.append(accepted_key(command.command_id))
        values.append(_encoder.encode(record))
        if isinstance(command.payload, CreateTask):
            keys.append(task_project_key(command.task_id))
            values.append(str(command.payload.project_id))
    try:
        script = script or redis.register_script(_RECORD_SCRIPT)
        await script(keys=keys, args=[ttl_s, *values])
    except (RedisError, OSError) as exc:
        logger.warning("could not record %d accepted command(s): %r", len(commands), exc)


class AcceptedRecorder:
    """Coalesces ``record_accepted`` calls of concurrent requests into one Redis call per event
    loop turn: under load, one round trip serves many 202s. Each caller still waits for its
    own records to be written, so ``GET /commands/{id}`` right after the 202 finds it.
    """

    def __init__(self, redis: Redis, ttl_s: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self._script = redis.register_script(_RECORD_SCRIPT)  # hashed once, EVALSHA after
        self._pending: list[TaskCommand] = []
        # one future per caller (not one shared and shielded): a cancelled caller cancels
        # only its own wait, and no shield wrapper is built per request
        self._waiters: list[asyncio.Future[None]] = []
        self._tasks: set[asyncio.Future[None]] = set()  # strong refs until done

    async def record(self, commands: Sequence[TaskCommand]) -> None:
        loop = asyncio.get_running_loop()
        if not self._waiters:
            loop.call_soon(self._start_flush)
        waiter = loop.create_future()
        self._waiters.append(waiter)
        self._pending.extend(commands)
        await waiter

    def _start_flush(self) -> None:
        commands, self._pending = self._pending, []
        waiters, self._waiters = self._waiters, []
        self._tasks.add(asyncio.ensure_future(self._flush(commands, waiters)))

    async def _flush(
        self, commands: list[TaskCommand], waiters: list[asyncio.Future[None]]
    ) -> None:
        try:
            await record_accepted(self.redis, commands, self.ttl_s)  # never raises
        finally:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._tasks.discard(asyncio.current_task())


@dataclass(slots=True)
class CommandGateway:
    """Everything the command endpoints need, built once per app."""

    publisher: CommandPublisher
    redis: Redis
    access: ProjectAccessCache
    session_factory: async_sessionmaker[AsyncSession]
    recorder: AcceptedRecorder
    accepted_ttl_s: int = DEFAULT_ACCEPTED_TTL_S
    unapplied_wait_s: float = 3.0

    async def submit(self, commands: Sequence[TaskCommand], trace_id: str) -> None:
        """Publish and wait for the broker's ack (503 otherwise), then record acceptance."""
        await self.publisher.publish(commands, trace_id)
        await self.recorder.record(commands)

    async def project_for_create(
        self, principal: Principal, project_id: uuid.UUID | None
    ) -> uuid.UUID:
        """The project a new task goes to (default: personal), checked for member rights."""
        if project_id is None:
            project_id = await self.access.personal_project(principal.user_id)
        await self.access.role(principal, project_id, ProjectRole.MEMBER)
        return project_id

    async def authorise_on_task(
        self, principal: Principal, task_id: uuid.UUID, *, deleting: bool = False
    ) -> uuid.UUID:
        """Check the caller may send a command about an existing task; returns its project.

        Members may change tasks; deleting needs maintainer, or being the task's creator.
        A task the caller cannot see is 404, exactly like one that does not exist."""
        created_by: uuid.UUID | None = None
        row = await self._ownership(task_id)
        project_id: uuid.UUID | None
        if row is not None:
            project_id, created_by = row.project_id, row.created_by
        else:
            project_id = await self._accepted_task_project(task_id)
        if project_id is None and await self._record_may_be_lost(task_id):
            row = await self._wait_for_row(task_id)
            if row is not None:
                project_id, created_by = row.project_id, row.created_by
        if project_id is None:
            raise NotFoundError("Task not found")
        try:
            role = await self.access.role(principal, project_id, ProjectRole.VIEWER)
        except NotFoundError:
            # The project's "not found" would tell a task that exists from a random id.
            raise NotFoundError("Task not found") from None
        if deleting:
            if role_at_least(role, ProjectRole.MAINTAINER) or (
                created_by == principal.user_id and role_at_least(role, ProjectRole.MEMBER)
            ):
                return project_id
            raise ForbiddenError("Deleting needs the maintainer role or being the task's creator")
        if not role_at_least(role, ProjectRole.MEMBER):
            raise ForbiddenError("This needs the member role in the project")
        return project_id

    async def _ownership(self, task_id: uuid.UUID) -> TaskOwnership | None:
        async with self.session_factory() as session:
            return await TaskReadRepository.from_session(session).ownership(task_id)

    async def _record_may_be_lost(self, task_id: uuid.UUID) -> bool:
        """Whether a task unknown to PostgreSQL and Redis may still be an accepted create
        whose record Redis lost (it keeps nothing across a restart): only when Redis cannot be
        read, or started after the id was minted and within the record's lifetime. Ids this
        API never mints (random v4) are unknown at once."""
        now = datetime.now(UTC)
        lifetime = timedelta(seconds=self.accepted_ttl_s)
        minted = minted_at(task_id)
        if minted is None and task_id.version != DERIVED_ID_VERSION:
            return False
        if minted is not None and minted < now - lifetime:
            return False  # its record would have expired: the create was applied long ago
        try:
            uptime = int((await self.redis.info("server"))["uptime_in_seconds"])
        except (RedisError, OSError, KeyError, ValueError):
            return True
        started = now - timedelta(seconds=uptime)
        if minted is None:
            # Derived from an Idempotency-Key: no time to go by. Only a restart within the
            # last few minutes can have lost a record of a create still waiting to be applied.
            return started > now - DERIVED_ID_LOSS_WINDOW
        return minted <= started + MINT_CLOCK_SKEW

    async def _wait_for_row(self, task_id: uuid.UUID) -> TaskOwnership | None:
        """Wait (bounded) for the consumer to write the task's row; 503 if it does not.
        None: the task was stored and deleted since (a plain 404)."""
        async with self.session_factory() as session:
            if await TaskReadRepository.from_session(session).is_deleted(task_id):
                return None
        deadline = time.monotonic() + self.unapplied_wait_s
        delay = 0.05
        while (row := await self._ownership(task_id)) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UnavailableError(
                    "This task is not known yet: its create may still be waiting to be "
                    "applied. Retry shortly.",
                    retry_after_s=max(1, round(self.unapplied_wait_s)),
                )
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.5)
        return row

    async def _accepted_task_project(self, task_id: uuid.UUID) -> uuid.UUID | None:
        try:
            raw = await self.redis.get(task_project_key(task_id))
        except (RedisError, OSError):
            return None
        return uuid.UUID(raw.decode() if isinstance(raw, bytes) else raw) if raw else None


def build_command(
    principal: Principal,
    payload: CommandPayload,
    task_id: uuid.UUID,
    command_id: uuid.UUID | None = None,
) -> TaskCommand:
    return new_command(
        payload,
        actor=Actor(user_id=principal.user_id, role=principal.role),
        task_id=task_id,
        command_id=command_id,
    )
