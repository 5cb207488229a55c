"""The events of one ``GET /notifications/stream``: fed by the process's ``LiveHub``, ended when
the access token expires or the user no longer exists, and holding one of the user's
``api.max_streams_per_user`` places while open."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Final

import jwt
import msgspec
from litestar.datastructures import State
from litestar.response import ServerSentEventMessage

from taskstream.notifications.live_hub import CLOSED, LiveHub
from taskstream.observability.metrics import SSE_STREAMS_OPEN
from taskstream.web.concurrency_caps import Claim, ConcurrencyCaps

# How often a stream checks its user, renews its place and sends a keep-alive comment.
STREAM_CHECK_S: Final = 5.0
# A place not renewed for this long lapses (its process died).
STREAM_CLAIM_S: Final = 30.0


def token_expiry(authorization: bytes | str | None) -> float:
    """``exp`` of the request's bearer token (already verified by the request guard)."""
    raw = authorization.decode("latin-1") if isinstance(authorization, bytes) else authorization
    token = (raw or "").partition(" ")[2].strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    return float(claims["exp"])


async def claim_stream(state: State, user_id: uuid.UUID) -> Claim:
    """One of the user's places for a live stream, or a 429."""
    caps: ConcurrencyCaps = state.concurrency_caps
    cap = state.settings.api.max_streams_per_user
    return await caps.acquire("streams", user_id, cap, STREAM_CLAIM_S)


def _end(reason: str) -> ServerSentEventMessage:
    return ServerSentEventMessage(event="end", data=reason)


async def live_events(
    state: State, user_id: uuid.UUID, claim: Claim, expires_at: float
) -> AsyncIterator[ServerSentEventMessage]:
    """``notification`` events until the token expires (``end: token-expired``), the user is
    gone (``end: revoked``) or the process must drop the stream (``end: reconnect``)."""
    hub: LiveHub = state.live_hub
    caps: ConcurrencyCaps = state.concurrency_caps
    SSE_STREAMS_OPEN.inc()
    try:
        async with hub.stream(user_id) as queue:
            yield ServerSentEventMessage(comment="connected")
            next_check = time.monotonic() + STREAM_CHECK_S
            while True:
                left = expires_at - time.time()
                if left <= 0:
                    yield _end("token-expired")
                    return
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + STREAM_CHECK_S
                    if await state.user_status.active_role(user_id) is None:
                        yield _end("revoked")
                        return
                    await caps.renew(claim, STREAM_CLAIM_S)
                    yield ServerSentEventMessage(comment="keep-alive")
                wait = max(0.0, min(next_check - time.monotonic(), left))
                try:
                    payload = await asyncio.wait_for(queue.get(), wait)
                except TimeoutError:
                    continue
                if payload == CLOSED:
                    yield _end("reconnect")
                    return
                decoded = msgspec.json.decode(payload)
                # other live messages (attachment progress) name their own event type
                yield ServerSentEventMessage(
                    data=payload.decode(),
                    event=str(decoded.get("sseEvent", "notification")),
                    id=str(decoded.get("id", "")),
                )
    finally:
        SSE_STREAMS_OPEN.dec()
        await caps.release(claim)
