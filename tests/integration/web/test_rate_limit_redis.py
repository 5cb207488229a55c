"""The rate limiter's leases against the real Redis: two processes' limiters share one count."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from taskstream.settings import RateLimitSettings, Settings
from taskstream.web.ratelimit import RateLimiter


@pytest.fixture
async def two_processes(settings: Settings, services_up: None) -> AsyncIterator[list[RateLimiter]]:
    prefix = f"test-leases-{uuid.uuid4().hex}"
    limits = RateLimitSettings(member="2000/day", admin="100000000/day")
    limiters = [RateLimiter(limits, settings.redis.url, prefix) for _ in range(2)]
    yield limiters
    for limiter in limiters:
        await limiter.close()
    redis = Redis.from_url(settings.redis.url)
    keys = [key async for key in redis.scan_iter(f"{prefix}*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


async def _burst(limiter: RateLimiter, kind: str, n: int) -> int:
    decisions = await asyncio.gather(*(limiter.hit(kind, "one-client") for _ in range(n)))
    return sum(d.allowed for d in decisions)


async def test_concurrent_bursts_from_two_processes_get_exactly_the_limit(two_processes):
    first, second = two_processes
    allowed = 0
    for _ in range(8):  # 256 concurrent requests per process, both at once
        allowed += sum(
            await asyncio.gather(_burst(first, "member", 256), _burst(second, "member", 256))
        )
    assert allowed == 2000
    assert not first.degraded and not second.degraded


async def test_an_unreachable_limit_refuses_nothing_at_256_concurrent(two_processes):
    first, second = two_processes
    for _ in range(4):
        results = await asyncio.gather(_burst(first, "admin", 256), _burst(second, "admin", 256))
        assert results == [256, 256]
