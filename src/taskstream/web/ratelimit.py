"""Rate limiting with ``limits`` on Redis, falling back to an in-process limiter.

Fixed windows aligned to the clock: the key carries the window number, so one atomic
INCR+EXPIRE (limits' Lua script) gives the count, and the reset time is known without a
second round trip.

Leases: for generous limits a process takes hits from Redis in blocks (one INCRBY per block)
and hands them out locally, so a client at 1000 req/s costs a few Redis calls per second
instead of 1000. Every hit handed out has a position in the window's Redis count (the block
``(end - size, end]``), and a hit is allowed only when its position is within the limit, so the
shared limit is never exceeded, however many processes take blocks. Per (kind, identity) and
process:
- one refill at a time: requests that find the block used up while a refill is in flight
  wait for that refill and share its block, instead of each taking a block of its own;
- a block is taken only when the previous one is used up, so no unused remainder is ever
  replaced (only a block still unused when its window ends is lost, and that window is over);
- the block size follows the observed rate: 1 at the start of a window, then at least the
  number of requests waiting and twice the previous block, capped at 1 % of the limit
  (``LEASE_FRACTION``) and at an eighth of what is left of the limit, so close to the limit
  blocks shrink to single hits and little can be stranded in another process's block;
- once the Redis count has reached the limit, the rest of the window is refused locally.
Small limits (login, registration: 1 % is below one) use blocks of one: exact.

When Redis is unreachable the configured policy applies (``limits.redis_unavailable_policy``):
``local`` (default) keeps limiting per process in memory, ``allow`` stops limiting, ``deny``
answers 503. The state is logged on every change and reported by /health. Never a 500.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Final, Literal

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from litestar.types import Scope

from taskstream.errors import RateLimitedError, UnavailableError
from taskstream.settings import RateLimitSettings
from taskstream.web.client_address import peer_address

logger = logging.getLogger(__name__)

LimitKind = Literal["member", "admin", "anonymous", "login", "registration"]
KINDS: Final[tuple[LimitKind, ...]] = ("member", "admin", "anonymous", "login", "registration")
# After a Redis failure, use the fallback this long before trying Redis again.
REDIS_RETRY_AFTER_S: Final = 5.0
REDIS_TIMEOUT_S: Final = 2.0
LEASE_FRACTION: Final = 100  # a block is at most 1% of a limit
# A block is at most this fraction of what is left of the limit, so near the limit blocks
# shrink and another process's unused block strands little.
HEADROOM_SHARE: Final = 8
MAX_LEASES: Final = 100_000


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_s)
        return headers

    def asgi_headers(self) -> list[tuple[bytes, bytes]]:
        """The RateLimit-* headers of an allowed response, ready for an ASGI message."""
        return [
            (b"ratelimit-limit", b"%d" % self.limit),
            (b"ratelimit-remaining", b"%d" % self.remaining),
            (b"ratelimit-reset", b"%d" % self.reset_s),
        ]


@dataclass(slots=True, eq=False)
class Lease:
    """This process's block of one window's Redis count for one (kind, identity)."""

    window: int
    next: int = 1  # position (in the window's Redis count) of the next hit handed out
    end: int = 0  # last position of the current block; next > end: used up
    size: int = 1  # size of the next block
    full: bool = False  # the Redis count has reached the limit: refuse the rest locally
    # the one refill in flight; requests that find the block used up wait for it
    refill: asyncio.Future[None] | None = field(default=None)
    waiting: int = 0  # requests waiting for the refill in flight


def redis_storage_uri(redis_url: str) -> str:
    scheme, sep, rest = redis_url.partition("://")
    return f"async+{scheme}{sep}{rest}"


class RateLimiter:
    """Counts hits per (kind, identity) in clock-aligned windows."""

    def __init__(
        self, settings: RateLimitSettings, redis_url: str, key_prefix: str = "taskstream-limits"
    ) -> None:
        self.settings = settings
        self.items: dict[str, RateLimitItem] = {k: parse(getattr(settings, k)) for k in KINDS}
        # implementation="redispy": limits defaults to coredis, which is not installed.
        self.redis = RedisStorage(
            redis_storage_uri(redis_url),
            implementation="redispy",
            key_prefix=key_prefix,
            wrap_exceptions=True,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
        )
        self.memory = MemoryStorage()
        self._redis_down_until = 0.0
        self.last_error: str | None = None
        self._expiry = {k: item.get_expiry() for k, item in self.items.items()}
        # (kind, identity) -> this process's lease; a lease of an earlier window is replaced
        # (its window is over, so nothing still usable is lost).
        self._leases: dict[tuple[str, str], Lease] = {}

    @property
    def degraded(self) -> bool:
        return self._redis_down_until > time.monotonic()

    def status(self) -> tuple[str, str]:
        """("up"|"degraded", detail) for /health: degraded from a Redis failure until the next
        successful Redis call."""
        if self.last_error is not None:
            return "degraded", (
                f"redis unreachable ({self.last_error}); policy "
                f"{self.settings.redis_unavailable_policy}"
            )
        return "up", "redis"

    def hit_from_lease(self, kind: str, identity: str) -> Decision | None:
        """Count a hit against this process's lease for the current window, without awaiting
        anything; None when Redis has to be asked (no lease, a new window, or used up).

        The hot path of every authenticated request: a dict lookup instead of a coroutine."""
        lease = self._leases.get((kind, identity))
        if lease is None:
            return None
        expiry = self._expiry[kind]
        now = time.time()
        window = int(now // expiry)
        if lease.window != window:
            return None
        amount = self.items[kind].amount
        if lease.next <= lease.end:
            count = lease.next
            lease.next += 1
        elif lease.full:
            count = amount + 1
        else:
            return None
        reset_s = max(1, math.ceil((window + 1) * expiry - now))
        return Decision(count <= amount, amount, max(0, amount - count), reset_s)

    async def hit(self, kind: str, identity: str) -> Decision:
        """Count a hit, taking a new block from Redis when this process's is used up (one
        refill in flight per (kind, identity); concurrent callers share it)."""
        key = (kind, identity)
        expiry = self._expiry[kind]
        while True:
            decision = self.hit_from_lease(kind, identity)
            if decision is not None:
                return decision
            window = int(time.time() // expiry)
            lease = self._leases.get(key)
            if lease is None or lease.window != window:
                lease = self._new_lease(key, window)
            if lease.refill is None:
                return await self._refill(kind, identity, lease)
            lease.waiting += 1
            try:
                # shield: a cancelled waiter must not cancel the refill the others share
                await asyncio.shield(lease.refill)
            finally:
                lease.waiting -= 1

    def _new_lease(self, key: tuple[str, str], window: int) -> Lease:
        if len(self._leases) >= MAX_LEASES:
            self._evict(time.time())
        lease = self._leases[key] = Lease(window)
        return lease

    def _evict(self, now: float) -> None:
        """Drop leases of past windows; if that is not enough, every lease without a refill
        in flight (each loses at most one block of the current window: under-delivery, never
        over the limit)."""
        stale = [
            key
            for key, lease in self._leases.items()
            if lease.window != int(now // self._expiry[key[0]])
        ]
        for key in stale:
            del self._leases[key]
        if len(self._leases) >= MAX_LEASES:
            self._leases = {k: v for k, v in self._leases.items() if v.refill is not None}

    async def _refill(self, kind: str, identity: str, lease: Lease) -> Decision:
        item = self.items[kind]
        amount = item.amount
        expiry = self._expiry[kind]
        cap = max(1, amount // LEASE_FRACTION)
        headroom = max(1, (amount - lease.end) // HEADROOM_SHARE)
        size = max(1, min(cap, headroom, max(lease.size, lease.waiting + 1)))
        done = asyncio.get_running_loop().create_future()
        lease.refill = done
        try:
            end = await self._incr(item.key_for(kind, identity, str(lease.window)), expiry, size)
            if end is not None:
                lease.next, lease.end = end - size + 2, end  # this request takes end - size + 1
                lease.full = end >= amount
                lease.size = min(cap, 2 * size)
        finally:
            lease.refill = None
            done.set_result(None)
        now = time.time()
        reset_s = max(1, math.ceil((lease.window + 1) * expiry - now))
        if end is None:  # policy "allow" while Redis is down
            return Decision(True, amount, amount, reset_s)
        count = end - size + 1
        return Decision(count <= amount, amount, max(0, amount - count), reset_s)

    async def _incr(self, key: str, expiry: int, amount: int) -> int | None:
        if not self.degraded:
            try:
                return await self.redis.incr(key, expiry, amount)
            except Exception as exc:  # StorageError, timeouts: whatever Redis does, never a 500
                self._redis_down_until = time.monotonic() + REDIS_RETRY_AFTER_S
                if self.last_error is None:
                    logger.warning(
                        "rate limiter: redis unreachable (%r); policy %s",
                        exc,
                        self.settings.redis_unavailable_policy,
                    )
                self.last_error = type(exc).__name__
        policy = self.settings.redis_unavailable_policy
        if policy == "allow":
            return None
        if policy == "deny":
            raise UnavailableError("Rate limiting is unavailable", int(REDIS_RETRY_AFTER_S))
        return await self.memory.incr(key, expiry, amount)

    def mark_recovered(self) -> None:
        if self.last_error is not None:
            logger.info("rate limiter: redis reachable again")
        self.last_error = None

    async def check(self, kind: str, identity: str) -> Decision:
        """Count a hit; raise ``RateLimitedError`` (429 with headers) when over the limit."""
        decision = self.hit_from_lease(kind, identity) or await self.hit(kind, identity)
        return self.enforce(kind, decision)

    def enforce(self, kind: str, decision: Decision) -> Decision:
        """Raise ``RateLimitedError`` for a refused hit; note a recovered Redis."""
        if self.last_error is not None and not self.degraded:
            self.mark_recovered()
        if not decision.allowed:
            raise RateLimitedError(
                f"Rate limit of {self.items[kind]} exceeded", headers=decision.headers()
            )
        return decision

    async def close(self) -> None:
        await self.memory.reset()


def client_ip(scope: Scope) -> str:
    """The client's address: the app's ``ClientAddress`` (trusted proxies), else the peer."""
    app = scope.get("app")
    resolve = app.state.get("client_address") if app is not None else None
    return resolve(scope) if resolve is not None else peer_address(scope)
