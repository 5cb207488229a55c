"""One Redis subscription per API process, fanned out to every live stream it serves.

A stream registers a queue for its user; the first stream of a user subscribes the process to
that user's channel (notifications/live.py), the last one to close unsubscribes. One reader
task reads the subscription and puts each message on the user's queues. A stream whose queue
is full (a client not reading) is ended, and so is every stream when the subscription fails:
clients reconnect with ``Last-Event-ID`` and get what they missed first (streams.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Final

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from taskstream.notifications.live import CHANNEL_PREFIX, user_channel

logger = logging.getLogger(__name__)

QUEUE_SIZE: Final = 256
# Put on a stream's queue when the stream must end (slow client, lost subscription, shutdown).
CLOSED: Final = b""


class LiveHub:
    """The process's subscription to the live channels of the users it streams to."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._redis: Redis | None = None
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._streams: dict[uuid.UUID, set[asyncio.Queue[bytes]]] = {}
        self._lock = asyncio.Lock()

    @property
    def subscribed_users(self) -> int:
        return len(self._streams)

    @contextlib.asynccontextmanager
    async def stream(self, user_id: uuid.UUID) -> AsyncIterator[asyncio.Queue[bytes]]:
        """A queue of the user's live notifications (``CLOSED`` means: end the stream)."""
        queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_SIZE)
        async with self._lock:
            first = user_id not in self._streams
            self._streams.setdefault(user_id, set()).add(queue)
            try:
                if first:
                    await self._connected().subscribe(user_channel(user_id))
                self._start_reader()
            except BaseException:
                self._forget(user_id, queue)
                raise
        try:
            yield queue
        finally:
            async with self._lock:
                if self._forget(user_id, queue) and self._pubsub is not None:
                    with contextlib.suppress(Exception):
                        await self._pubsub.unsubscribe(user_channel(user_id))

    def _forget(self, user_id: uuid.UUID, queue: asyncio.Queue[bytes]) -> bool:
        """Drop a stream's queue; True when it was the user's last one."""
        queues = self._streams.get(user_id)
        if queues is None:
            return False
        queues.discard(queue)
        if queues:
            return False
        del self._streams[user_id]
        return True

    def _connected(self) -> PubSub:
        if self._pubsub is None:
            # a connection of its own without a read timeout: the app's client has one
            self._redis = Redis.from_url(self.redis_url)
            self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        return self._pubsub

    def _start_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="live-hub-reader")

    async def _read(self) -> None:
        pubsub = self._connected()
        try:
            while True:  # until close() or a failure: a new stream may come at any time
                message = await pubsub.get_message(timeout=5.0)
                if message is None:
                    continue
                channel = message["channel"]
                channel = channel.decode() if isinstance(channel, bytes) else str(channel)
                data = message["data"]
                payload = data if isinstance(data, bytes) else str(data).encode()
                self._deliver(uuid.UUID(channel.removeprefix(CHANNEL_PREFIX)), payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("live hub: subscription lost (%r); ending every stream", exc)
            await self._reset()

    def _deliver(self, user_id: uuid.UUID, payload: bytes) -> None:
        for queue in list(self._streams.get(user_id, ())):
            try:
                queue.put_nowait(payload)
            except asyncio.QueueFull:  # a client that does not read: end its stream
                _close(queue)

    async def _reset(self) -> None:
        async with self._lock:
            for queues in self._streams.values():
                for queue in queues:
                    _close(queue)
            self._streams.clear()
            pubsub, redis, self._pubsub, self._redis = self._pubsub, self._redis, None, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
        if redis is not None:
            with contextlib.suppress(Exception):
                await redis.aclose()

    async def close(self) -> None:
        """End every stream and the subscription (application shutdown)."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        await self._reset()


def _close(queue: asyncio.Queue[bytes]) -> None:
    while True:  # make room: the end of the stream must get through
        try:
            queue.put_nowait(CLOSED)
            return
        except asyncio.QueueFull:
            queue.get_nowait()
