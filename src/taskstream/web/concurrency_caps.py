"""Caps on what one user may hold open at once (live streams, waiting command reads), shared
by every API process through Redis.

Each holder is a member of a sorted set per (kind, user) scored by when its claim lapses; a
holder renews its claim while it lives and removes it when done, so a crashed process's claims
lapse on their own. Redis unreachable: the cap is kept per process instead (logged), never a
500.
"""

from __future__ import annotations

import collections
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Final

from redis.asyncio import Redis

from taskstream.errors import RateLimitedError

logger = logging.getLogger(__name__)

RETRY_AFTER_S: Final = 5


@dataclass(frozen=True, slots=True)
class Claim:
    key: str
    member: str
    in_redis: bool


class ConcurrencyCaps:
    """Claims of concurrent holders per (kind, user) (see module)."""

    def __init__(self, redis: Redis, key_prefix: str) -> None:
        self.redis = redis
        self.prefix = f"{key_prefix}:concurrent"
        self._local: collections.Counter[str] = collections.Counter()

    async def acquire(self, kind: str, user_id: uuid.UUID, cap: int, lapse_s: float) -> Claim:
        """Claim one of ``cap`` places for ``lapse_s`` seconds (renew to keep it), or raise a
        429 ``RateLimitedError``."""
        key, member, now = f"{self.prefix}:{kind}:{user_id}", uuid.uuid4().hex, time.time()
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(key, "-inf", now)
                pipe.zadd(key, {member: now + lapse_s})
                pipe.zcard(key)
                pipe.expire(key, int(lapse_s) + 60)
                held = (await pipe.execute())[2]
        except Exception as exc:
            logger.warning("concurrency caps: redis unreachable (%r); capping per process", exc)
            if self._local[key] >= cap:
                raise _refused(kind, cap) from None
            self._local[key] += 1
            return Claim(key, member, in_redis=False)
        if held > cap:
            await self._remove(key, member)
            raise _refused(kind, cap)
        return Claim(key, member, in_redis=True)

    async def renew(self, claim: Claim, lapse_s: float) -> None:
        if claim.in_redis:
            try:
                await self.redis.zadd(claim.key, {claim.member: time.time() + lapse_s}, xx=True)
            except Exception as exc:
                logger.warning("concurrency caps: renewing failed (%r)", exc)

    async def release(self, claim: Claim) -> None:
        if claim.in_redis:
            await self._remove(claim.key, claim.member)
        else:
            self._local[claim.key] -= 1
            if self._local[claim.key] <= 0:
                del self._local[claim.key]

    async def _remove(self, key: str, member: str) -> None:
        try:
            await self.redis.zrem(key, member)
        except Exception as exc:  # the claim lapses on its own
            logger.warning("concurrency caps: releasing failed (%r)", exc)


def _refused(kind: str, cap: int) -> RateLimitedError:
    return RateLimitedError(
        f"At most {cap} concurrent {kind} per user; close one first",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )
