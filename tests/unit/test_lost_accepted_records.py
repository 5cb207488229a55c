"""When a task unknown to PostgreSQL and Redis may still be an accepted create whose Redis
record was lost (Redis keeps nothing across a restart): the decision table, with a stand-in
for Redis's INFO (unit test; the real restart is tests/integration/tasks/test_redis_restart.py)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from taskstream.tasks.service import TaskService, minted_at


class _Info:
    def __init__(self, uptime_s: float | None) -> None:
        self.uptime_s = uptime_s

    async def info(self, section: str) -> dict[str, Any]:
        assert section == "server"
        if self.uptime_s is None:
            raise RedisConnectionError("down")
        return {"uptime_in_seconds": int(self.uptime_s)}


def _gateway(uptime_s: float | None) -> TaskService:
    gateway = TaskService.__new__(TaskService)
    gateway.redis = _Info(uptime_s)  # type: ignore[assignment]
    gateway.accepted_ttl_s = 24 * 3600
    return gateway


def _v7(seconds_ago: float) -> uuid.UUID:
    ms = int((time.time() - seconds_ago) * 1000)
    return uuid.UUID(int=(ms << 80) | (7 << 76) | (2 << 62) | 4242)


@pytest.mark.parametrize(
    ("task_id", "uptime_s", "may_be_lost"),
    [
        (_v7(60), 30, True),  # minted before the restart, record gone
        (_v7(60), 3600, False),  # Redis was up when it was minted: its record would be there
        (_v7(60), None, True),  # Redis unreadable: cannot tell
        (_v7(2 * 24 * 3600), 30, False),  # older than a record lives: applied long ago
        (uuid.uuid5(uuid.NAMESPACE_URL, "k:0:task"), 30, True),  # derived, fresh restart
        (uuid.uuid5(uuid.NAMESPACE_URL, "k:0:task"), 3600, False),  # derived, old restart
        (uuid.uuid4(), 30, False),  # never minted by this API
    ],
)
async def test_record_may_be_lost(task_id: uuid.UUID, uptime_s: float | None, may_be_lost: bool):
    assert await _gateway(uptime_s)._record_may_be_lost(task_id) is may_be_lost


def test_minted_at_reads_the_uuid7_time() -> None:
    minted = minted_at(_v7(0))
    assert minted is not None and abs(minted.timestamp() - time.time()) < 2
    assert minted_at(uuid.uuid4()) is None
