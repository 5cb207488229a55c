"""One-time tickets: how a browser opens a URL that needs a caller without sending a header.

A browser cannot add ``Authorization`` to a page load or to ``EventSource``; so the caller's
client asks for a ticket with its bearer token and puts the ticket in the URL, where it is
worth one use within ``TICKET_TTL_S``. Used by ``/ops`` (the dashboard page) and
``GET /notifications/stream`` (each with its own ``purpose``: a ticket for one never opens
the other).

Redis keeps only a hash of the ticket (a leaked Redis dump or log opens nothing) with the
grant: who, and until when what the ticket opens may last (the expiry of the access token that
asked for it, so a ticket never outlives its token). ``GETDEL`` makes a second use fail, also
between API processes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from typing import Final

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from taskstream.errors import UnavailableError

TICKET_TTL_S: Final = 60
_TICKET_BYTES: Final = 32
# What ``secrets.token_urlsafe(32)`` gives; anything else is refused before Redis is asked.
_TICKET_SHAPE: Final = re.compile(r"[A-Za-z0-9_-]{43}")
# The bound a route's schema declares for a ``ticket`` parameter (fuzzers stay near it).
MAX_TICKET_LENGTH: Final = 100
_KEY_PREFIX: Final = "taskstream:ticket:"


class TicketGrant(msgspec.Struct, array_like=True, frozen=True):
    """What a redeemed ticket gives: the user, and the Unix time at which whatever the ticket
    opens must end (the asking token's expiry)."""

    user_id: uuid.UUID
    expires_at: float
    # The asking token's version: a password change or deactivation after the ticket was
    # issued voids it, as it voids the token.
    token_version: int = 0


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(TicketGrant)


def _key(purpose: str, ticket: str) -> str:
    return f"{_KEY_PREFIX}{purpose}:{hashlib.sha256(ticket.encode()).hexdigest()}"


async def issue_ticket(redis: Redis, purpose: str, grant: TicketGrant) -> str:
    """A fresh ticket for ``purpose``, valid once for ``TICKET_TTL_S`` seconds; 503 without
    Redis."""
    ticket = secrets.token_urlsafe(_TICKET_BYTES)
    try:
        await redis.set(_key(purpose, ticket), _encoder.encode(grant), ex=TICKET_TTL_S)
    except RedisError as exc:
        raise UnavailableError("Tickets cannot be issued now") from exc
    return ticket


async def redeem_ticket(redis: Redis, purpose: str, ticket: str) -> TicketGrant | None:
    """The grant of a ticket issued for ``purpose``, or None (unknown, used or expired); 503
    without Redis."""
    if not _TICKET_SHAPE.fullmatch(ticket):
        return None
    try:
        raw = await redis.getdel(_key(purpose, ticket))
    except RedisError as exc:
        raise UnavailableError("Tickets cannot be checked now") from exc
    if raw is None:
        return None
    try:
        return _decoder.decode(raw if isinstance(raw, bytes) else str(raw).encode())
    except msgspec.DecodeError:  # a value of another shape under our prefix: not a ticket
        return None
