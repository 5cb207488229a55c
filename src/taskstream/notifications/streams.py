"""The events of one ``GET /notifications/stream``: fed by the process's ``LiveHub``, resumed
after a ``Last-Event-ID`` from PostgreSQL, ended when the credentials that opened it expire or
the user no longer exists, and holding one of the user's ``api.max_streams_per_user`` places
while open.

Every ``notification`` event carries ``id:``, the notification's position in (created_at, id)
order (the same opaque value as a ``GET /notifications`` cursor). A client that reconnects
with it (``Last-Event-ID``, which ``EventSource`` sends by itself, or ``?lastEventId=``) first
gets the notifications after that position from the database, oldest first, then the live ones;
the stream subscribes before it reads the database, so a notification published meanwhile is
queued, and one that was both read and queued is sent once.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Final

import msgspec
from litestar.datastructures import State
from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.types import Scope

from taskstream.notifications import service
from taskstream.notifications.live_hub import CLOSED, LiveHub
from taskstream.notifications.schemas import LiveNotification
from taskstream.observability.metrics import SSE_STREAMS_OPEN
from taskstream.principal import Principal
from taskstream.web.authentication import credentials_expiry
from taskstream.web.concurrency_caps import Claim, ConcurrencyCaps
from taskstream.web.methods import is_head_request

# How often a stream checks its user, renews its place and sends a keep-alive comment.
STREAM_CHECK_S: Final = 5.0
# A place not renewed for this long lapses (its process died).
STREAM_CLAIM_S: Final = 30.0
# The ticket purpose of the stream (web/tickets.py).
STREAM_TICKET_PURPOSE: Final = "notification-stream"
# A reconnect replays at most this many missed notifications, in pages of REPLAY_PAGE; beyond,
# a ``resync`` event tells the client to read ``GET /notifications`` instead.
REPLAY_MAX: Final = 1000
REPLAY_PAGE: Final = 200

_live_decoder = msgspec.json.Decoder(LiveNotification)
_encoder = msgspec.json.Encoder()


async def claim_stream(state: State, user_id: uuid.UUID) -> Claim:
    """One of the user's places for a live stream, or a 429."""
    caps: ConcurrencyCaps = state.concurrency_caps
    cap = state.settings.api.max_streams_per_user
    return await caps.acquire("streams", user_id, cap, STREAM_CLAIM_S)


def resume_position(header: str | None, query: str | None) -> tuple[datetime, uuid.UUID] | None:
    """Where a reconnecting client stopped: ``Last-Event-ID`` (the header wins) or
    ``lastEventId``; None for a fresh stream; 422 for a value the stream never sent."""
    if header:
        return service.decode_cursor(header, "Last-Event-ID")
    if query:
        return service.decode_cursor(query, "lastEventId")
    return None


async def open_stream(
    state: State,
    principal: Principal,
    scope: Scope,
    last_event_id: str | None,
    last_event_id_query: str | None,
) -> ServerSentEvent:
    """The stream's response: checks the resume position, claims a place (429 beyond the cap)
    and lasts until the credentials that opened it expire."""
    after = resume_position(last_event_id, last_event_id_query)
    claim = await claim_stream(state, principal.user_id)
    if is_head_request(scope):  # the headers a GET would get, and no stream to hold open
        await state.concurrency_caps.release(claim)
        return ServerSentEvent([])
    expires_at = credentials_expiry(scope)
    return ServerSentEvent(live_events(state, principal, claim, expires_at, after))


def _end(reason: str) -> ServerSentEventMessage:
    return ServerSentEventMessage(event="end", data=reason)


def _comment(text: str) -> ServerSentEventMessage:
    # data=None: litestar writes ``data: `` after a comment otherwise, which a client
    # dispatches as an empty message event
    return ServerSentEventMessage(comment=text, data=None)


def _notification(notification: LiveNotification, payload: str) -> ServerSentEventMessage:
    event_id = service.position(notification.created_at, notification.id)
    return ServerSentEventMessage(data=payload, event="notification", id=event_id)


async def _missed(
    state: State, user_id: uuid.UUID, after: tuple[datetime, uuid.UUID]
) -> AsyncIterator[LiveNotification | None]:
    """The notifications after ``after``, oldest first; None last when there were more than
    ``REPLAY_MAX``."""
    sent = 0
    while sent < REPLAY_MAX:
        async with state.session_factory() as session:
            page = await service.notifications_after(session, user_id, after, REPLAY_PAGE)
        for notification in page:
            yield notification
        sent += len(page)
        if len(page) < REPLAY_PAGE:
            return
        after = (page[-1].created_at, page[-1].id)
    async with state.session_factory() as session:
        if await service.notifications_after(session, user_id, after, 1):
            yield None


async def live_events(
    state: State,
    principal: Principal,
    claim: Claim,
    expires_at: float,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> AsyncIterator[ServerSentEventMessage]:
    """The missed notifications after ``after`` (if given), then ``notification`` events live,
    until the credentials expire (``end: token-expired``), the user is gone
    or its session ended (deactivation, password change: ``end: revoked``) or the process must
    drop the stream (``end: reconnect``)."""
    user_id = principal.user_id
    hub: LiveHub = state.live_hub
    caps: ConcurrencyCaps = state.concurrency_caps
    SSE_STREAMS_OPEN.inc()
    try:
        async with hub.stream(user_id) as queue:
            yield _comment("connected")
            replayed: set[uuid.UUID] = set()
            if after is not None:
                async for missed in _missed(state, user_id, after):
                    if missed is None:
                        yield ServerSentEventMessage(event="resync", data="too-many-missed")
                        break
                    replayed.add(missed.id)
                    yield _notification(missed, _encoder.encode(missed).decode())
            next_check = time.monotonic() + STREAM_CHECK_S
            while True:
                left = expires_at - time.time()
                if left <= 0:
                    yield _end("token-expired")
                    return
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + STREAM_CHECK_S
                    status = await state.user_status.status(user_id)
                    if status is None or status.token_version > principal.token_version:
                        yield _end("revoked")
                        return
                    await caps.renew(claim, STREAM_CLAIM_S)
                    yield _comment("keep-alive")
                wait = max(0.0, min(next_check - time.monotonic(), left))
                try:
                    payload = await asyncio.wait_for(queue.get(), wait)
                except TimeoutError:
                    continue
                if payload == CLOSED:
                    yield _end("reconnect")
                    return
                notification = _decode(payload)
                if notification is not None:
                    if notification.id not in replayed:
                        yield _notification(notification, payload.decode())
                elif (other := _other_event(payload)) is not None:
                    yield other
    finally:
        SSE_STREAMS_OPEN.dec()
        await caps.release(claim)


# A live event's name: dotted words such as ``attachment.progress``, on one line (an SSE
# ``event:`` field ends at a line break, so nothing else could be smuggled into the stream).
EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*")


def _other_event(payload: bytes) -> ServerSentEventMessage | None:
    """A live message that is not a notification (attachment progress), sent under the event
    name it gives (``sseEvent``) and without an ``id:``: a reconnect still resumes from the last
    notification."""
    try:
        decoded = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        return None
    if not isinstance(decoded, dict) or not isinstance(name := decoded.get("sseEvent"), str):
        return None
    if not EVENT_NAME.fullmatch(name):
        return None
    return ServerSentEventMessage(data=payload.decode(), event=name)


def _decode(payload: bytes) -> LiveNotification | None:
    try:
        return _live_decoder.decode(payload)
    except msgspec.DecodeError:  # not ours: nothing a client could use
        return None
