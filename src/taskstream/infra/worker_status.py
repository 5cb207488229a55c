"""The notification workers' heartbeat: one Redis key per worker process, with a TTL.

Workers have no HTTP listener; each writes its state (per consumer: consuming or recovering,
channel errors so far, the last error) every few seconds to
``taskstream:workers:<events exchange>:<worker id>`` with a TTL of a few heartbeats, and lists
itself in the sorted set ``taskstream:workers:<events exchange>`` (score: when its key expires),
so ``GET /health`` reads the live workers without scanning the keyspace. A worker that dies
simply disappears when its key expires. Keys are scoped by the events exchange, so deployments
(and test runs) sharing a Redis stay apart.
"""

from __future__ import annotations

import asyncio
import time

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

HEARTBEAT_INTERVAL_S = 5.0
HEARTBEAT_TTL_S = 15
INDEX_TTL_S = 24 * 3600  # the index outlives every heartbeat; gone a day after the last worker
KEY_PREFIX = "taskstream:workers"


class ConsumerStatus(msgspec.Struct, rename="camel"):
    """One RabbitMQ consumer (its own channel) of a worker."""

    queue: str
    state: str  # "starting", "consuming" or "recovering"
    channel_errors: int = 0
    last_error: str | None = None
    last_error_at: float | None = None  # unix seconds
    processed: int = 0
    deferred: int = 0  # webhook deliveries put off because their destination was busy


class WorkerStatus(msgspec.Struct, rename="camel"):
    worker_id: str
    host: str
    pid: int
    started_at: float
    updated_at: float
    consumers: dict[str, ConsumerStatus]

    @property
    def healthy(self) -> bool:
        return all(c.state == "consuming" for c in self.consumers.values())


def worker_status_key(events_exchange: str, worker_id: str) -> str:
    return f"{KEY_PREFIX}:{events_exchange}:{worker_id}"


def worker_index_key(events_exchange: str) -> str:
    return f"{KEY_PREFIX}:{events_exchange}"


async def write_worker_status(redis: Redis, events_exchange: str, status: WorkerStatus) -> None:
    """Publish one heartbeat; it expires unless renewed."""
    index = worker_index_key(events_exchange)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.set(
            worker_status_key(events_exchange, status.worker_id),
            msgspec.json.encode(status),
            ex=HEARTBEAT_TTL_S,
        )
        pipe.zadd(index, {status.worker_id: time.time() + HEARTBEAT_TTL_S})
        pipe.expire(index, INDEX_TTL_S)
        await pipe.execute()


async def clear_worker_status(redis: Redis, events_exchange: str, worker_id: str) -> None:
    """A worker stopping cleanly leaves no stale heartbeat behind."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.delete(worker_status_key(events_exchange, worker_id))
        pipe.zrem(worker_index_key(events_exchange), worker_id)
        await pipe.execute()


async def read_worker_statuses(
    redis: Redis, events_exchange: str, *, limit: int = 200
) -> list[WorkerStatus]:
    """Every live worker's last heartbeat (at most ``limit``), ordered by worker id."""
    index = worker_index_key(events_exchange)
    now = time.time()
    await redis.zremrangebyscore(index, "-inf", now)  # workers that died without clearing
    ids = await redis.zrangebyscore(index, now, "+inf", start=0, num=limit)
    if not ids:
        return []
    keys = [worker_status_key(events_exchange, _text(i)) for i in ids]
    values = await redis.mget(keys)
    decoder = msgspec.json.Decoder(WorkerStatus)
    statuses = []
    for value in values:
        if value is None:  # expired between SCAN and MGET
            continue
        try:
            statuses.append(decoder.decode(value))
        except msgspec.DecodeError:
            continue  # a newer or older worker's shape: not ours to judge
    return sorted(statuses, key=lambda s: s.worker_id)


async def read_worker_statuses_bounded(
    redis: Redis, events_exchange: str, timeout_s: float = 1.0
) -> list[WorkerStatus] | None:
    """Like ``read_worker_statuses`` but None when Redis does not answer in time."""
    try:
        async with asyncio.timeout(timeout_s):
            return await read_worker_statuses(redis, events_exchange)
    except (TimeoutError, RedisError, OSError):
        return None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
