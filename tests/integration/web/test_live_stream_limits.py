"""Live streams and command waits against a real server: per-user caps, one Redis subscription
per process fanned out to every stream, streams that end with their token or their user."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import jwt
import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from taskstream.notifications.live import publish_live, user_channel
from taskstream.notifications.schemas import LiveNotification
from taskstream.settings import Settings
from tests.integration.http_support import ApiServer, ApiUser, register_and_login, relaxed_limits


@pytest.fixture(scope="module")
def server(settings: Settings, database, topics) -> Iterator[ApiServer]:
    tuned = relaxed_limits(settings)
    api = tuned.api.model_copy(update={"max_streams_per_user": 2, "max_command_waits_per_user": 1})
    server = ApiServer(tuned.model_copy(update={"api": api})).start()
    yield server
    server.stop()


@pytest.fixture
async def http(server: ApiServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis.url)
    yield client
    await client.aclose()


@asynccontextmanager
async def open_stream(http: httpx.AsyncClient, token: str) -> AsyncIterator[httpx.Response]:
    headers = {"Authorization": f"Bearer {token}"}
    async with http.stream("GET", "/notifications/stream", headers=headers) as response:
        yield response


async def next_event(lines: AsyncIterator[str], timeout_s: float = 25) -> str:
    """The next event's lines (comments included), joined."""
    event: list[str] = []
    async with asyncio.timeout(timeout_s):
        async for line in lines:
            if not line and event:
                return "\n".join(event)
            if line:
                event.append(line)
    return "\n".join(event)


async def test_streams_beyond_the_cap_get_429_and_a_closed_one_frees_its_place(http):
    user = await register_and_login(http, "Streamer")
    async with open_stream(http, user.token) as first, open_stream(http, user.token) as second:
        assert first.status_code == second.status_code == 200
        third = await http.get("/notifications/stream", headers=user.headers)
        assert third.status_code == 429
        assert third.json()["type"].endswith("/rate-limited")
        assert int(third.headers["retry-after"]) >= 1
    async with open_stream(http, user.token) as again:
        assert again.status_code == 200


async def test_one_subscription_per_process_feeds_every_stream(http, redis: Redis):
    user = await register_and_login(http, "Fanout")
    async with open_stream(http, user.token) as first, open_stream(http, user.token) as second:
        streams = [first.aiter_lines(), second.aiter_lines()]
        for lines in streams:
            assert ": connected" in await next_event(lines)
        channel = user_channel(uuid.UUID(user.id))
        assert await redis.pubsub_numsub(channel) == [(channel.encode(), 1)]
        notification = LiveNotification(
            id=uuid.uuid4(),
            user_id=uuid.UUID(user.id),
            event_id=uuid.uuid4(),
            event_type="task.assigned",
            title="You were assigned",
            created_at=datetime.now(UTC),
        )
        await publish_live(redis, [notification])
        for lines in streams:
            event = await next_event(lines)
            while event.startswith(":"):  # keep-alive comments
                event = await next_event(lines)
            assert "event: notification" in event and str(notification.id) in event
    await asyncio.sleep(0.5)
    assert await redis.pubsub_numsub(channel) == [(channel.encode(), 0)]


async def test_a_stream_ends_when_its_token_expires(http, server: ApiServer):
    user = await register_and_login(http, "Expiring")
    now = int(time.time())
    claims = {"sub": user.id, "role": "member", "iat": now, "exp": now + 3}
    claims |= {"jti": uuid.uuid4().hex, "iss": "taskstream"}
    secret = server.settings.auth.jwt_secret.get_secret_value()
    token = jwt.encode(claims, secret, algorithm="HS256")
    started = time.monotonic()
    async with open_stream(http, token) as stream:
        lines = stream.aiter_lines()
        event = await next_event(lines)
        while "event: end" not in event:
            event = await next_event(lines, timeout_s=10)
    assert "data: token-expired" in event
    assert time.monotonic() - started < 8


async def test_a_stream_ends_when_its_user_is_gone(http, session_factory):
    user = await register_and_login(http, "Leaving")
    async with open_stream(http, user.token) as stream:
        lines = stream.aiter_lines()
        await next_event(lines)
        async with session_factory() as session:
            await session.execute(
                text("UPDATE users SET deleted_at = now() WHERE id = :id"), {"id": user.id}
            )
            await session.commit()
        event = await next_event(lines)
        while "event: end" not in event:
            event = await next_event(lines, timeout_s=20)
    assert "data: revoked" in event


async def test_command_waits_are_capped_per_user(http):
    user: ApiUser = await register_and_login(http, "Waiter")
    accepted = await http.post("/tasks", json={"title": "never applied"}, headers=user.headers)
    assert accepted.status_code == 202, accepted.text
    command_id = accepted.json()["commandId"]

    async def wait() -> int:
        url = f"/commands/{command_id}?wait=2"
        return (await http.get(url, headers=user.headers)).status_code

    first = asyncio.create_task(wait())
    await asyncio.sleep(0.5)  # the first one is waiting (no consumer runs here)
    assert await wait() == 429
    assert await first == 200
    assert await wait() == 200  # its place was released
