"""The notification workers' heartbeat: one Redis key per worker process, with a TTL.

Workers have no HTTP listener; each writes its state (per consumer: consuming or recovering,
channel errors so far, the last error) every few seconds to
``taskstream:workers:<events exchange>:<worker id>`` with a TTL of a few heartbeats, and
``GET /health`` reads them. A worker that dies simply disappears when its key expires. Keys are
scoped by the events exchange, so deployments (and test runs) sharing a Redis stay apart.
"""

from __future__ import annotations

import asyncio

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

HEARTBEAT_INTERVAL_S = 5.0
HEARTBEAT_TTL_S = 15
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


async def write_worker_status(redis: Redis, events_exchange: str, status: WorkerStatus) -> None:
    """Publish one heartbeat; it expires unless renewed."""
    key = worker_status_key(events_exchange, status.worker_id)
    await redis.set(key, msgspec.json.encode(status), ex=HEARTBEAT_TTL_S)


async def clear_worker_status(redis: Redis, events_exchange: str, worker_id: str) -> None:
    """A worker stopping cleanly leaves no stale heartbeat behind."""
    await redis.delete(worker_status_key(events_exchange, worker_id))


async def read_worker_statuses(
    redis: Redis, events_exchange: str, *, limit: int = 200
) -> list[WorkerStatus]:
    """Every live worker's last heartbeat (at most ``limit``), ordered by worker id."""
    keys = []
    async for key in redis.scan_iter(match=f"{worker_status_key(events_exchange, '*')}", count=200):
        keys.append(key)
        if len(keys) >= limit:
            break
    if not keys:
        return []
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
