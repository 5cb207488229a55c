"""The live stream as a browser uses it, against a real server and Redis: heartbeats that are
SSE comments only (read from the raw bytes), one-time tickets instead of a header
(``EventSource`` cannot send one), and ``Last-Event-ID`` resuming from PostgreSQL without gaps
or duplicates."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import msgspec
import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from taskstream.notifications.live import publish_live, user_channel
from taskstream.notifications.schemas import LiveNotification
from taskstream.notifications.service import position
from taskstream.notifications.streams import REPLAY_MAX
from taskstream.settings import Settings
from tests.integration.http_support import (
    PASSWORD,
    ApiServer,
    ApiUser,
    register_and_login,
    relaxed_limits,
)
from tests.integration.ops.support import register_admin

SEPARATOR = b"\r\n\r\n"


@pytest.fixture(scope="module")
def server(settings: Settings, database, topics) -> Iterator[ApiServer]:
    tuned = relaxed_limits(settings)
    api = tuned.api.model_copy(update={"max_streams_per_user": 2})
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


class RawEvents:
    """The stream's events as the raw blocks between blank lines, exactly as sent."""

    def __init__(self, response: httpx.Response) -> None:
        self.chunks = response.aiter_raw()
        self.buffer = b""

    async def next(self, timeout_s: float = 20) -> str:
        async with asyncio.timeout(timeout_s):
            while SEPARATOR not in self.buffer:
                self.buffer += await anext(self.chunks)
        block, self.buffer = self.buffer.split(SEPARATOR, 1)
        return block.decode()

    async def next_notification(self, timeout_s: float = 20) -> tuple[str, str]:
        """(id, data) of the next ``notification`` event, skipping comments."""
        while True:
            block = await self.next(timeout_s)
            fields = dict(line.split(": ", 1) for line in block.split("\r\n") if ": " in line)
            if fields.get("event") == "end":
                raise AssertionError(f"the stream ended: {block}")
            if fields.get("event") == "notification":
                return fields["id"], fields["data"]


@asynccontextmanager
async def stream(
    http: httpx.AsyncClient, url: str = "/notifications/stream", **headers: str
) -> AsyncIterator[RawEvents]:
    async with http.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield RawEvents(response)


async def ticket_for(http: httpx.AsyncClient, token: str) -> dict:
    response = await http.post(
        "/notifications/stream-ticket", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201, response.text
    return response.json()


def short_token(server: ApiServer, user: ApiUser, seconds: int) -> str:
    now = int(time.time())
    claims = {"sub": user.id, "role": "member", "iat": now, "exp": now + seconds}
    claims |= {"jti": uuid.uuid4().hex, "iss": "taskstream"}
    return jwt.encode(claims, server.settings.auth.jwt_secret.get_secret_value(), "HS256")


async def test_heartbeats_are_comments_with_no_data_line(http):
    user = await register_and_login(http, "Beat")
    async with stream(http, Authorization=f"Bearer {user.token}") as events:
        assert await events.next() == ": connected"
        # the keep-alive comes after STREAM_CHECK_S (5 s): a comment and nothing else, which
        # EventSource ignores (a ``data:`` line would dispatch an empty message event)
        assert await events.next() == ": keep-alive"


async def test_a_ticket_opens_the_stream_once_without_a_header(http, redis: Redis):
    user = await register_and_login(http, "Ticketed")
    issued = await ticket_for(http, user.token)
    assert issued["url"] == f"/notifications/stream?ticket={issued['ticket']}"
    expires_at = datetime.fromisoformat(issued["expiresAt"])
    assert timedelta(0) < expires_at - datetime.now(UTC) <= timedelta(seconds=60)
    # Redis holds a hash of the ticket, never the ticket
    keys = [key async for key in redis.scan_iter(match="taskstream:ticket:*")]
    assert keys and not [key for key in keys if issued["ticket"].encode() in key]
    for key in keys:
        assert issued["ticket"].encode() not in (await redis.get(key) or b"")

    async with stream(http, issued["url"]) as events:
        assert await events.next() == ": connected"
        again = await http.get(issued["url"])
        assert again.status_code == 401
        assert again.json()["instance"] == "/notifications/stream"
        assert "ticket" in again.json()["detail"]


@pytest.mark.parametrize("ticket", ["", "made-up", "x" * 500])
async def test_no_header_and_no_valid_ticket_is_401(http, ticket):
    response = await http.get("/notifications/stream", params={"ticket": ticket})
    assert response.status_code in (401, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_ticket_of_another_purpose_does_not_open_the_stream(http, session_factory):
    admin = await register_admin(http, session_factory)
    ops = (await http.post("/ops/tickets", headers=admin.headers)).json()
    response = await http.get("/notifications/stream", params={"ticket": ops["ticket"]})
    assert response.status_code == 401
    stream_ticket = await ticket_for(http, admin.token)
    assert (await http.get("/ops", params={"ticket": stream_ticket["ticket"]})).status_code == 401


async def test_the_ticket_route_needs_a_bearer_token(http):
    assert (await http.post("/notifications/stream-ticket")).status_code == 401


async def test_a_ticket_stream_ends_when_the_asking_token_expires(http, server):
    user = await register_and_login(http, "Brief")
    issued = await ticket_for(http, short_token(server, user, 4))
    async with stream(http, issued["url"]) as events:
        block = await events.next()
        while "event: end" not in block:
            block = await events.next(timeout_s=15)
    assert "data: token-expired" in block


async def test_a_ticket_stream_ends_when_the_user_is_deactivated(http, session_factory):
    user = await register_and_login(http, "Gone")
    issued = await ticket_for(http, user.token)
    async with stream(http, issued["url"]) as events:
        await events.next()
        async with session_factory() as session:
            await session.execute(
                text("UPDATE users SET deleted_at = now() WHERE id = :id"), {"id": user.id}
            )
            await session.commit()
        block = await events.next(timeout_s=30)
        while "event: end" not in block:
            block = await events.next(timeout_s=30)
    assert "data: revoked" in block


async def _change_password(http: httpx.AsyncClient, user: ApiUser) -> None:
    changed = await http.post(
        "/users/me/password",
        json={"currentPassword": PASSWORD, "newPassword": "a brand new passphrase 2"},
        headers=user.headers,
    )
    assert changed.status_code == 200, changed.text


async def test_a_password_change_ends_open_streams(http):
    user = await register_and_login(http, "Rotated")
    issued = await ticket_for(http, user.token)
    async with (
        stream(http, Authorization=f"Bearer {user.token}") as bearer_events,
        stream(http, issued["url"]) as ticket_events,
    ):
        assert await bearer_events.next() == ": connected"
        assert await ticket_events.next() == ": connected"
        await _change_password(http, user)
        for events in (bearer_events, ticket_events):
            block = await events.next(timeout_s=30)
            while "event: end" not in block:
                block = await events.next(timeout_s=30)
            assert "data: revoked" in block


async def test_a_password_change_voids_tickets_issued_before_it(http):
    user = await register_and_login(http, "Voided")
    issued = await ticket_for(http, user.token)
    await _change_password(http, user)
    refused = await http.get(issued["url"])
    assert refused.status_code == 401, refused.text
    assert "ended" in refused.json()["detail"]


async def _stored(session_factory, user: ApiUser, created_at: datetime) -> LiveNotification:
    """A notification row of ``user`` (as the worker writes it), in its live shape."""
    notification = LiveNotification(
        id=uuid.uuid4(),
        user_id=uuid.UUID(user.id),
        event_id=uuid.uuid4(),
        event_type="task.assigned",
        title=f"at {created_at.isoformat()}",
        created_at=created_at,
    )
    async with session_factory() as session:
        await session.execute(
            text(
                "INSERT INTO notifications (id, user_id, event_id, event_type, title, created_at)"
                " VALUES (:id, :user, :event, :type, :title, :at)"
            ),
            {
                "id": notification.id,
                "user": notification.user_id,
                "event": notification.event_id,
                "type": notification.event_type,
                "title": notification.title,
                "at": created_at,
            },
        )
        await session.commit()
    return notification


def _id(notification: LiveNotification) -> str:
    return position(notification.created_at, notification.id)


async def test_a_reconnect_replays_what_it_missed_then_continues_live_once(
    http, redis: Redis, session_factory
):
    user = await register_and_login(http, "Resumer")
    now = datetime.now(UTC)
    first, second, third = [
        await _stored(session_factory, user, now - timedelta(minutes=m)) for m in (3, 2, 1)
    ]
    bearer = {"Authorization": f"Bearer {user.token}"}

    # a fresh stream sends only live notifications, each with its position as id
    async with stream(http, **bearer) as events:
        await events.next()
        await publish_live(redis, [first])
        event_id, data = await events.next_notification()
    assert event_id == _id(first) and str(first.id) in data

    # the client was away while second and third were written: it resumes after first
    async with stream(http, **bearer, **{"Last-Event-ID": event_id}) as events:
        assert [await events.next_notification() for _ in range(2)] == [
            (_id(second), _live_json(second)),
            (_id(third), _live_json(third)),
        ]
        # a live push of one it already replayed is not sent twice; a new one is
        fourth = await _stored(session_factory, user, datetime.now(UTC))
        await publish_live(redis, [third, fourth])
        assert (await events.next_notification())[0] == _id(fourth)

    # a browser that reconnects with a new ticket passes where it stopped in the query
    issued = await ticket_for(http, user.token)
    url = f"{issued['url']}&lastEventId={_id(third)}"
    async with stream(http, url) as events:
        assert (await events.next_notification())[0] == _id(fourth)


def _live_json(notification: LiveNotification) -> str:
    return msgspec.json.encode(notification).decode()


async def test_nothing_missed_replays_nothing(http, session_factory, redis: Redis):
    user = await register_and_login(http, "UpToDate")
    latest = await _stored(session_factory, user, datetime.now(UTC))
    headers = {"Authorization": f"Bearer {user.token}", "Last-Event-ID": _id(latest)}
    async with stream(http, **headers) as events:
        assert await events.next() == ": connected"
        later = await _stored(session_factory, user, datetime.now(UTC))
        await publish_live(redis, [later])
        assert (await events.next_notification())[0] == _id(later)


async def test_a_reconnect_after_too_many_missed_says_to_resync(http, session_factory):
    user = await register_and_login(http, "LongGone")
    since = await _stored(session_factory, user, datetime.now(UTC) - timedelta(hours=1))
    async with session_factory() as session:
        await session.execute(
            text(
                "INSERT INTO notifications (id, user_id, event_id, event_type, title, created_at)"
                " SELECT gen_random_uuid(), :user, gen_random_uuid(), 'task.assigned', 't',"
                " now() - make_interval(secs => n) FROM generate_series(1, :count) AS n"
            ),
            {"user": user.id, "count": REPLAY_MAX + 1},
        )
        await session.commit()
    headers = {"Authorization": f"Bearer {user.token}", "Last-Event-ID": _id(since)}
    replayed = []
    async with stream(http, **headers) as events:
        block = await events.next()
        while "event: resync" not in block:
            if "event: notification" in block:
                replayed.append(block)
            block = await events.next()
    assert len(replayed) == REPLAY_MAX
    assert "data: too-many-missed" in block


@pytest.mark.parametrize(
    ("where", "value", "path"),
    [
        ("header", "not-a-position", "Last-Event-ID"),
        ("query", "bm90LWEtZGF0ZXxub3QtYS11dWlk", "lastEventId"),
    ],
)
async def test_a_last_event_id_the_stream_never_sent_is_422(http, where, value, path):
    user = await register_and_login(http, "Forger")
    headers = dict(user.headers)
    params = {}
    if where == "header":
        headers["Last-Event-ID"] = value
    else:
        params["lastEventId"] = value
    response = await http.get("/notifications/stream", headers=headers, params=params)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert [e["path"] for e in problem["errors"]] == [path]
    assert problem["instance"] == "/notifications/stream"


async def test_head_on_the_stream_answers_headers_and_holds_no_place(http):
    user = await register_and_login(http, "Header")
    for _ in range(3):  # more than the cap of 2 open streams
        head = await http.head("/notifications/stream", headers=user.headers)
        assert head.status_code == 200
        assert head.headers["content-type"].startswith("text/event-stream")
        assert head.content == b""
    async with (
        stream(http, Authorization=f"Bearer {user.token}") as one,
        stream(http, Authorization=f"Bearer {user.token}") as two,
    ):
        assert await one.next() == await two.next() == ": connected"


async def test_other_live_events_keep_their_name_and_never_move_the_resume_position(
    http, redis: Redis
):
    user = await register_and_login(http, "Progress")
    progress = {"sseEvent": "attachment.progress", "id": str(uuid.uuid4()), "state": "scanning"}
    async with stream(http, Authorization=f"Bearer {user.token}") as events:
        assert await events.next() == ": connected"
        channel = user_channel(uuid.UUID(user.id))
        await redis.publish(channel, msgspec.json.encode({"sseEvent": "bad\nname", "x": 1}))
        await redis.publish(channel, msgspec.json.encode(progress))
        block = await events.next()
        while block.startswith(":"):
            block = await events.next()
    lines = block.split("\r\n")
    assert "event: attachment.progress" in lines
    # no ``id:``: EventSource keeps the last notification's position for Last-Event-ID
    assert not [line for line in lines if line.startswith("id:")]
    assert msgspec.json.decode(block.split("data: ", 1)[1]) == progress
