"""Every API process forgets a project's cached lifecycle when it is archived, unarchived,
deleted or restored, through one Redis pub/sub channel.

The process that made the change forgets its entry before answering and announces the project
id; every API process listens and forgets it too, within milliseconds. Pub/sub delivers only to
connected listeners, so a listener that (re)subscribes forgets every entry it holds (it may have
missed announcements), and if Redis cannot be reached at all the cache's TTL still bounds the
staleness (``projects/access.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from taskstream.projects.access import ProjectAccessCache

logger = logging.getLogger(__name__)

CHANNEL: Final = "taskstream:project-lifecycle"
RETRY_MAX_S: Final = 10.0


async def announce_lifecycle_change(redis: Redis, project_id: uuid.UUID) -> None:
    """Tell every API process to forget the project's cached lifecycle (best effort: without
    Redis, the other processes see the change when their entry expires)."""
    try:
        await redis.publish(CHANNEL, str(project_id))
    except (RedisError, OSError) as exc:
        logger.warning("project %s: lifecycle change not announced (%r)", project_id, exc)


class LifecycleListener:
    """The process's subscription to ``CHANNEL``; ``on_forget`` sees every id it forgot."""

    def __init__(
        self,
        redis_url: str,
        access: ProjectAccessCache,
        on_forget: Callable[[uuid.UUID | None], None] | None = None,
    ) -> None:
        self.redis_url = redis_url
        self.access = access
        self.on_forget = on_forget
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="project-lifecycle-listener")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    async def _run(self) -> None:
        delay = 0.5
        while True:
            # a connection of its own without a read timeout: the app's client has one
            redis = Redis.from_url(self.redis_url)
            pubsub = redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                self._forget(None)  # announcements made while not subscribed are lost
                delay = 0.5
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is not None:
                        self._forget(_project_id(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("project lifecycle: subscription lost (%r); retrying", exc)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await redis.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    def _forget(self, project_id: uuid.UUID | None) -> None:
        """Forget one project, or every one (None)."""
        if project_id is None:
            self.access.forget_all_projects()
        else:
            self.access.forget_project(project_id)
        if self.on_forget is not None:
            self.on_forget(project_id)


def _project_id(data: object) -> uuid.UUID | None:
    text = data.decode() if isinstance(data, bytes) else str(data)
    try:
        return uuid.UUID(text)
    except ValueError:
        return None  # not ours: forget everything rather than guess
