"""Failed-login counting: slow down password guessing without letting anyone lock out the
account's owner.

Only FAILED attempts count (a wrong password or an unknown email), in Redis, for
``limits.login_failure_window_s`` from the first failure:
- per (client address, account): after ``limits.login_failures_per_client`` failures that
  address is refused for that account (429) until the window ends;
- per account: after ``limits.login_failures_per_account`` failures from anywhere, every
  address that has itself failed for the account is refused; an address that has not failed
  may still try, so a correct password from the owner's address is never refused because of
  someone else's failures. A botnet spraying the account gets one guess per address per window.
A successful login clears its address's count for the account. The per-address login limit
(``limits.login``, charged in the request guard) still bounds every address's attempts.

Redis unreachable: failures are not counted (logged) and the per-address limit, which has an
in-process fallback, is the only bound; never a 500.
"""

from __future__ import annotations

import hashlib
import logging
import math

from redis.asyncio import Redis

from taskstream.errors import RateLimitedError
from taskstream.settings import RateLimitSettings
from taskstream.web.ratelimit import Decision

logger = logging.getLogger(__name__)


def _account_key(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


class LoginGuard:
    """Counts failed logins per account and per (address, account) (see module)."""

    def __init__(self, redis: Redis, limits: RateLimitSettings, key_prefix: str) -> None:
        self.redis = redis
        self.limits = limits
        self.prefix = f"{key_prefix}:login-failures"

    def _keys(self, address: str, email: str) -> tuple[str, str]:
        account = _account_key(email)
        return f"{self.prefix}:account:{account}", f"{self.prefix}:client:{address}:{account}"

    async def check(self, address: str, email: str) -> None:
        """Raise ``RateLimitedError`` when this address may not try this account now."""
        account_key, client_key = self._keys(address, email)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.get(account_key)
                pipe.get(client_key)
                pipe.ttl(client_key)
                account_raw, client_raw, ttl = await pipe.execute()
        except Exception as exc:  # Redis down: the per-address limit still applies
            logger.warning("login guard: redis unreachable (%r); failures not counted", exc)
            return
        account_failures, client_failures = int(account_raw or 0), int(client_raw or 0)
        refused = client_failures >= self.limits.login_failures_per_client or (
            client_failures > 0 and account_failures >= self.limits.login_failures_per_account
        )
        if refused:
            retry = max(1, ttl if ttl and ttl > 0 else self.limits.login_failure_window_s)
            limit = self.limits.login_failures_per_client
            headers = Decision(False, limit, 0, math.ceil(retry)).headers()
            raise RateLimitedError("Too many failed logins; try again later", headers=headers)

    async def record_failure(self, address: str, email: str) -> None:
        window = self.limits.login_failure_window_s
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in self._keys(address, email):
                    pipe.incr(key)
                    pipe.expire(key, window, nx=True)
                await pipe.execute()
        except Exception as exc:
            logger.warning("login guard: redis unreachable (%r); failure not counted", exc)

    async def record_success(self, address: str, email: str) -> None:
        try:
            await self.redis.delete(self._keys(address, email)[1])
        except Exception as exc:
            logger.warning("login guard: redis unreachable (%r)", exc)

    async def reset_allowed(self, email: str, per_address: int, window_s: int) -> bool:
        """Count a password-reset request for ``email``; False past ``per_address`` in the
        window. Counted whether or not the address has an account, so the count tells nothing.
        Redis unreachable: allowed (logged); the per-client limit still bounds callers."""
        key = f"{self.prefix}:reset:{_account_key(email)}"
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incr(key)
                pipe.expire(key, window_s, nx=True)
                count, _ = await pipe.execute()
        except Exception as exc:
            logger.warning("login guard: redis unreachable (%r); reset not counted", exc)
            return True
        return int(count) <= per_address
