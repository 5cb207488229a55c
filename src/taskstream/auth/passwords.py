"""Password hashing with argon2id (OWASP parameters), off the event loop."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP's argon2id minimum (19 MiB, t=2, p=1): ~15 ms here, so logins do not starve the loop.
_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
# Verified when the email is unknown, so both paths cost the same (no user enumeration by timing).
_DUMMY_HASH = _hasher.hash("not-a-real-password-only-for-timing")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; an absent hash still spends the time of a check."""

    def _verify() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(_verify)
