"""Live push of new in-app notifications through Redis pub/sub (one channel per user).

The worker publishes after its transaction commits, so a stream never shows a notification the
database does not have; a missed push (worker died between commit and publish) is still in
``GET /notifications``, and a stream reconnecting with ``Last-Event-ID`` replays it from the
database (streams.py). The API reads the channels through
one subscription per process (live_hub.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

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
