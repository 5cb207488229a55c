"""The records a command leaves for ``GET /commands/{id}``, written once and read here:

- while only accepted: ``taskstream:cmd:{commandId}`` in Redis -> ``AcceptedRecord`` (JSON),
  written by the API after the broker acknowledged the command, with the record's lifetime;
  for a create also ``taskstream:task-project:{taskId}`` -> project id, so a command right
  after ``POST /tasks`` can be authorised before the consumer has written the row;
- once settled: a ``command_statuses`` row, and the command id notified on
  ``COMMANDS_CHANNEL`` by the apply transaction (delivered only if it commits).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from taskstream.messages import CreateTask, TaskCommand

logger = logging.getLogger(__name__)

# Channel the apply transaction notifies with the ids of commands it settled; listened to by
# `GET /commands/{id}?wait=N`. A NOTIFY payload is limited to 8000 bytes: ids go in chunks.
COMMANDS_CHANNEL = "taskstream_commands"
NOTIFY_IDS_PER_MESSAGE = 200

DEFAULT_ACCEPTED_TTL_S = 24 * 3600


def accepted_key(command_id: uuid.UUID) -> str:
    """Where a command's ``AcceptedRecord`` lives until the record expires."""
    return f"taskstream:cmd:{command_id}"


def task_project_key(task_id: uuid.UUID) -> str:
    """Where an accepted-but-not-yet-applied task's project is remembered."""
    return f"taskstream:task-project:{task_id}"


class AcceptedRecord(msgspec.Struct, rename="camel"):
    actor_id: uuid.UUID
    task_id: uuid.UUID
    type: str
    accepted_at: datetime


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AcceptedRecord)


def decode_accepted(raw: bytes | str) -> AcceptedRecord | None:
    """The record stored at ``accepted_key``; None for anything unreadable."""
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError:
        return None


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
        record = AcceptedRecord(command.actor.user_id, command.task_id, command.type, now)
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
