"""Live push of new in-app notifications through Redis pub/sub (one channel per user).

The worker publishes after its transaction commits, so a stream never shows a notification the
database does not have; a missed push (worker died between commit and publish) is still in
``GET /notifications``, which clients read on (re)connect.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence

import msgspec
from redis.asyncio import Redis

from taskstream.notifications.schemas import LiveNotification

CHANNEL_PREFIX = "taskstream:notifications:"
_encoder = msgspec.json.Encoder()


def user_channel(user_id: uuid.UUID) -> str:
    return f"{CHANNEL_PREFIX}{user_id}"


async def publish_live(redis: Redis, notifications: Sequence[LiveNotification]) -> None:
    """One pipelined PUBLISH per new notification."""
    if not notifications:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for notification in notifications:
            pipe.publish(user_channel(notification.user_id), _encoder.encode(notification))
        await pipe.execute()


async def subscribe_live(redis: Redis, user_id: uuid.UUID) -> AsyncIterator[bytes]:
    """Yield each live notification (JSON bytes) for one user until the caller stops."""
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(user_channel(user_id))
    try:
        while True:
            message = await pubsub.get_message(timeout=15.0)
            if message is None:
                yield b""  # keep-alive tick for the SSE endpoint
                continue
            data = message["data"]
            yield data if isinstance(data, bytes) else str(data).encode()
    finally:
        await pubsub.unsubscribe()
        await pubsub.aclose()
