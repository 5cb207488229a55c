"""One-time tickets that let a browser open ``/ops`` without a session.

An admin's client asks for a ticket with its bearer token; the ticket goes into the URL the
browser opens and is worth one page load within ``TICKET_TTL_S``. Redis keeps only a hash of
it (a leaked Redis dump opens nothing) and ``GETDEL`` makes a second use fail, also between
API processes.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Final

from redis.asyncio import Redis

TICKET_TTL_S: Final = 60
_KEY_PREFIX: Final = "taskstream:ops-ticket:"


def _key(ticket: str) -> str:
    return _KEY_PREFIX + hashlib.sha256(ticket.encode()).hexdigest()


async def issue_ticket(redis: Redis, user_id: uuid.UUID) -> str:
    """A fresh ticket for ``user_id``, valid once for ``TICKET_TTL_S`` seconds."""
    ticket = secrets.token_urlsafe(32)
    await redis.set(_key(ticket), str(user_id), ex=TICKET_TTL_S)
    return ticket


async def redeem_ticket(redis: Redis, ticket: str) -> uuid.UUID | None:
    """The user the ticket was issued to, or None (unknown, used or expired)."""
    if not ticket or len(ticket) > 100:
        return None
    raw = await redis.getdel(_key(ticket))
    if raw is None:
        return None
    return uuid.UUID(raw.decode() if isinstance(raw, bytes) else str(raw))
