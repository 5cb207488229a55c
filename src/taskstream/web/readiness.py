"""Liveness and readiness as a load balancer or an orchestrator asks for them.

Readiness is read from what the process already holds (a ``SELECT 1`` on a pooled database
connection, a ``PING`` on the pooled Redis client, a metadata request on the Kafka publisher's
connections, "down" while the publisher has not connected), at most once
per ``READY_CACHE_S`` however many probes arrive (concurrent probes share the one check in
flight), and answers only "up"/"down" per dependency: no addresses, no exception text.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

import msgspec
from litestar.datastructures import State
from sqlalchemy import text

from taskstream.fields import example

logger = logging.getLogger(__name__)

READY_CACHE_S: Final = 1.0
CHECK_TIMEOUT_S: Final = 1.0
# Without these the API refuses commands; Redis down only degrades (limits fall back).
REQUIRED: Final = ("postgres", "kafka")


@example({"status": "ready", "checks": {"postgres": "up", "redis": "up", "kafka": "up"}})
class Readiness(msgspec.Struct, rename="camel"):
    status: str  # "ready" | "unavailable"
    checks: dict[str, str]  # dependency -> "up" | "down"


def readiness_cache(state: State) -> ReadinessCache:
    """The app's one readiness cache (probes and metric scrapes share it)."""
    cache: ReadinessCache | None = state.get("readiness")
    if cache is None:
        cache = state.readiness = ReadinessCache(state)
    return cache


class ReadinessCache:
    """The last readiness report, refreshed at most once per ``READY_CACHE_S``."""

    def __init__(self, state: State) -> None:
        self.state = state
        self._report: Readiness | None = None
        self._checked_at = 0.0
        self._in_flight: asyncio.Task[Readiness] | None = None

    async def report(self) -> Readiness:
        if self._report is not None and time.monotonic() - self._checked_at < READY_CACHE_S:
            return self._report
        if self._in_flight is None:
            self._in_flight = asyncio.ensure_future(self._check())
        task = self._in_flight
        try:
            # shield: a probe that disconnects must not cancel the check the others share
            return await asyncio.shield(task)
        finally:
            if self._in_flight is task and task.done():
                self._in_flight = None

    async def _check(self) -> Readiness:
        names = ("postgres", "redis", "kafka")
        results = await asyncio.gather(self._postgres(), self._redis(), self._kafka())
        checks = {name: "up" if ok else "down" for name, ok in zip(names, results, strict=True)}
        ready = all(checks[name] == "up" for name in REQUIRED)
        self._report = Readiness("ready" if ready else "unavailable", checks)
        self._checked_at = time.monotonic()
        return self._report

    async def _postgres(self) -> bool:
        engine = self.state.get("engine")
        if engine is None:
            return False
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S), engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            logger.warning("readiness: postgres check failed: %r", exc)
            return False
        return True

    async def _kafka(self) -> bool:
        publisher = self.state.get("publisher")
        return publisher is not None and await publisher.reachable(CHECK_TIMEOUT_S)

    async def _redis(self) -> bool:
        redis = self.state.get("redis")
        if redis is None:
            return False
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                await redis.ping()
        except Exception as exc:
            logger.warning("readiness: redis check failed: %r", exc)
            return False
        return True
