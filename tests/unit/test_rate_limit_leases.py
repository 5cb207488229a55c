"""The lease refill of the rate limiter, driven deterministically with a stand-in counter."""

from __future__ import annotations

import asyncio

from taskstream.settings import RateLimitSettings
from taskstream.web.ratelimit import RateLimiter


class GatedCounter:
    """Stands in for the Redis storage: counts INCRBY calls and holds each until released."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.calls: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.gate = asyncio.Event()

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        self.calls.append(amount)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await self.gate.wait()
        self.in_flight -= 1
        self.counts[key] = self.counts.get(key, 0) + amount
        return self.counts[key]


def limiter_on(counter: GatedCounter, member: str) -> RateLimiter:
    limiter = RateLimiter(RateLimitSettings(member=member), "redis://127.0.0.1:1/0")
    limiter.redis = counter  # type: ignore[assignment]
    return limiter


async def test_concurrent_requests_share_one_refill() -> None:
    counter = GatedCounter()
    limiter = limiter_on(counter, "1000000/day")
    hits = [asyncio.create_task(limiter.hit("member", "u1")) for _ in range(200)]
    await asyncio.sleep(0)  # every request has found the lease empty
    assert counter.calls == [1] and counter.in_flight == 1
    counter.gate.set()
    decisions = await asyncio.gather(*hits)
    assert all(d.allowed for d in decisions)
    # the first block (1) served the first request, the second covered everyone who waited
    assert counter.calls == [1, 199]
    assert counter.max_in_flight == 1
    assert sum(counter.counts.values()) == 200


async def test_a_burst_over_the_limit_is_cut_exactly_at_the_limit() -> None:
    counter = GatedCounter()
    counter.gate.set()
    limiter = limiter_on(counter, "500/day")
    decisions = await asyncio.gather(*(limiter.hit("member", "u1") for _ in range(2000)))
    assert sum(d.allowed for d in decisions) == 500
    # blocks of at most 1 % of the limit, shrinking to single hits at the limit, and the
    # 1500 requests over it refused locally without asking Redis
    assert max(counter.calls) <= 5
    assert sum(counter.calls) == 500


async def test_two_processes_deliver_the_whole_limit_and_never_more() -> None:
    counter = GatedCounter()
    counter.gate.set()
    first, second = limiter_on(counter, "1000/day"), limiter_on(counter, "1000/day")
    allowed = 0
    for _ in range(30):  # interleaved bursts, as two workers behind one load balancer see
        for limiter in (first, second):
            burst = await asyncio.gather(*(limiter.hit("member", "u1") for _ in range(50)))
            allowed += sum(d.allowed for d in burst)
    assert allowed == 1000


async def test_a_cancelled_waiter_does_not_cancel_the_shared_refill() -> None:
    counter = GatedCounter()
    limiter = limiter_on(counter, "1000000/day")
    refiller = asyncio.create_task(limiter.hit("member", "u1"))
    waiter = asyncio.create_task(limiter.hit("member", "u1"))
    other = asyncio.create_task(limiter.hit("member", "u1"))
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.sleep(0)
    counter.gate.set()
    assert (await refiller).allowed and (await other).allowed
    assert waiter.cancelled()
