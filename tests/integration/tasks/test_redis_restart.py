"""Redis keeps nothing across a restart. A command on a task created just before the restart
(its row not yet written by the consumer, its "accepted" record gone) must still be authorised:
the API waits for the row, and says "retry" (503) rather than a wrong 404 when it does not
come. A private redis-server on its own port is restarted; PostgreSQL and Kafka are real."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from taskstream.app import create_app
from taskstream.db import create_engine, create_session_factory, transaction
from taskstream.settings import KafkaSettings, Settings
from taskstream.tasks.apply import apply_task_commands
from tests.integration.http_support import free_port, read_commands, register_and_login
from tests.processes import ChildProcess

pytestmark = pytest.mark.fault


class PrivateRedis:
    """A redis-server without persistence, as production's default, that the test restarts."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is needed: apt-get install -y redis-server")
        self.port = free_port()
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(directory)]
        self.child = ChildProcess(argv, log=directory / "redis.log")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.child.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with redis.Redis(port=self.port, socket_timeout=0.5) as probe:
                    if probe.ping():
                        return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("private redis-server did not start")

    def stop(self) -> None:
        if self.child.alive():
            self.child.kill()  # no persistence: everything it held is gone

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(tmp_path)
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture
async def client(
    api_settings: Settings, private_redis: PrivateRedis, topics: KafkaSettings, database: str
) -> AsyncIterator[httpx.AsyncClient]:
    redis = api_settings.redis.model_copy(update={"url": private_redis.url})
    api = api_settings.api.model_copy(update={"unapplied_task_wait_s": 2.0})
    app = create_app(api_settings.model_copy(update={"redis": redis, "api": api}))
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as test_client:
        yield test_client


async def _create_then_lose_redis(
    client: httpx.AsyncClient, private_redis: PrivateRedis
) -> tuple[dict[str, str], dict[str, str]]:
    user = await register_and_login(client, "Rita")
    created = await client.post("/tasks", json={"title": "before"}, headers=user.headers)
    assert created.status_code == 202, created.text
    private_redis.restart()
    probe = Redis.from_url(private_redis.url)
    assert await probe.dbsize() == 0  # the accepted records are gone
    await probe.aclose()
    return user.headers, created.json()


async def test_command_after_a_redis_restart_waits_for_the_row(
    client: httpx.AsyncClient,
    private_redis: PrivateRedis,
    api_settings: Settings,
) -> None:
    headers, created = await _create_then_lose_redis(client, private_redis)

    found = await read_commands(api_settings, {uuid.UUID(created["commandId"])})
    commands = [command for _, command, _ in found.values()]

    async def consumer_applies_it() -> None:
        engine = create_engine(api_settings.db)
        try:
            async with transaction(create_session_factory(engine)) as session:
                result = await apply_task_commands(session, commands)
            assert len(result.applied) == 1
        finally:
            await engine.dispose()

    # The test client serves the request on this thread's loop, so the "consumer" runs on its
    # own thread, half a second into the PATCH's wait.
    consumer = threading.Timer(0.5, lambda: asyncio.run(consumer_applies_it()))
    consumer.start()
    response = await client.patch(
        f"/tasks/{created['taskId']}", json={"title": "after"}, headers=headers
    )
    consumer.join()
    assert response.status_code == 202, response.text


async def test_unapplied_task_after_a_redis_restart_is_503_not_404(
    client: httpx.AsyncClient, private_redis: PrivateRedis
) -> None:
    headers, created = await _create_then_lose_redis(client, private_redis)
    started = time.monotonic()
    response = await client.patch(
        f"/tasks/{created['taskId']}", json={"title": "after"}, headers=headers
    )
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) >= 1
    assert time.monotonic() - started >= 2.0  # it waited for the row first


async def test_ids_this_api_cannot_have_minted_before_the_restart_are_404_at_once(
    client: httpx.AsyncClient, private_redis: PrivateRedis
) -> None:
    headers, _ = await _create_then_lose_redis(client, private_redis)
    # a uuid7 minted a minute after Redis started: had it been accepted, Redis would know it
    future_ms = int(time.time() * 1000) + 60_000
    minted_later = uuid.UUID(int=(future_ms << 80) | (7 << 76) | (2 << 62) | 12345)
    for task_id in (uuid.uuid4(), minted_later):
        started = time.monotonic()
        response = await client.patch(f"/tasks/{task_id}", json={"title": "x"}, headers=headers)
        assert response.status_code == 404, response.text
        assert time.monotonic() - started < 1.5
