"""Rate limiting with ``limits`` on Redis, falling back to an in-process limiter.

Fixed windows aligned to the clock: the key carries the window number, so one atomic
INCR+EXPIRE (limits' Lua script) gives the count, and the reset time is known without a
second round trip.

Leases: for generous limits a process takes hits from Redis in blocks (INCRBY of 1% of the
limit) and hands them out locally, so a client at 1000 req/s costs ~10 Redis calls per second
instead of 1000. Leased hits are counted in Redis when taken, so the shared limit is never
exceeded; at most one unused block per process and window is lost (a client may be limited up
to 1% per worker early). Small limits (login, registration) use blocks of one: exact.

When Redis is unreachable the configured policy applies (``limits.redis_unavailable_policy``):
``local`` (default) keeps limiting per process in memory, ``allow`` stops limiting, ``deny``
answers 503. The state is logged on every change and reported by /health. Never a 500.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Final, Literal

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from litestar.types import Scope

from taskstream.errors import DomainError, UnavailableError
from taskstream.settings import RateLimitSettings

logger = logging.getLogger(__name__)

LimitKind = Literal["member", "admin", "anonymous", "login", "registration"]
KINDS: Final[tuple[LimitKind, ...]] = ("member", "admin", "anonymous", "login", "registration")
# After a Redis failure, use the fallback this long before trying Redis again.
REDIS_RETRY_AFTER_S: Final = 5.0
REDIS_TIMEOUT_S: Final = 2.0
LEASE_FRACTION: Final = 100  # lease 1% of a limit at a time
MAX_LEASES: Final = 100_000


class RateLimitedError(DomainError):
    status, slug, title = 429, "rate-limited", "Too many requests"

    def __init__(self, detail: str, headers: dict[str, str]) -> None:
        super().__init__(detail)
        self.headers = headers


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
        # (kind, identity) -> [window, hits still leased to this process, Redis count at the
        # end of the lease]; a lease of an earlier window is simply replaced.
        self._leases: dict[tuple[str, str], list[int]] = {}

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
        expiry = self._expiry[kind]
        now = time.time()
        window = int(now // expiry)
        lease = self._leases.get((kind, identity))
        if lease is None or lease[0] != window or lease[1] <= 0:
            return None
        lease[1] -= 1
        count = lease[2] - lease[1]
        amount = self.items[kind].amount
        reset_s = max(1, math.ceil((window + 1) * expiry - now))
        return Decision(count <= amount, amount, max(0, amount - count), reset_s)

    async def hit(self, kind: str, identity: str) -> Decision:
        decision = self.hit_from_lease(kind, identity)
        if decision is not None:
            return decision
        item = self.items[kind]
        expiry = self._expiry[kind]
        now = time.time()
        window = int(now // expiry)
        reset_s = max(1, math.ceil((window + 1) * expiry - now))
        size = max(1, item.amount // LEASE_FRACTION)
        end = await self._incr(item.key_for(kind, identity, str(window)), expiry, size)
        if end is None:  # policy "allow" while Redis is down
            return Decision(True, item.amount, item.amount, reset_s)
        if len(self._leases) >= MAX_LEASES:
            self._leases.clear()
        self._leases[(kind, identity)] = [window, size - 1, end]
        count = end - (size - 1)
        return Decision(count <= item.amount, item.amount, max(0, item.amount - count), reset_s)

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
    client = scope.get("client")
    return client[0] if client else "unknown"
