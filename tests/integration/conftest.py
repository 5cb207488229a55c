"""The API under test: the real app (real PostgreSQL, Redis, tansu) in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from taskstream.app import create_app
from taskstream.settings import KafkaSettings, Settings
from tests.integration.http_support import (
    ApiServer,
    ApiUser,
    register_and_login,
    relaxed_limits,
)


@pytest.fixture(scope="session")
def api_settings(settings: Settings) -> Settings:
    return relaxed_limits(settings)


@pytest.fixture(scope="session")
async def api_app(api_settings: Settings, database: str, topics: KafkaSettings) -> Litestar:
    return create_app(api_settings)


@pytest.fixture(scope="session")
async def client(api_app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with AsyncTestClient(app=api_app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="session")
async def served(
    api_settings: Settings, database: str, topics: KafkaSettings
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the API served by two real worker processes: requests sent together really
    run together (the in-process test client handles one request at a time)."""
    server = ApiServer(api_settings, workers=2).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            yield http
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def app_redis(api_settings: Settings) -> AsyncIterator[Redis]:
    redis = Redis.from_url(api_settings.redis.url)
    yield redis
    await redis.aclose()


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> ApiUser:
    return await register_and_login(client, "Alice")


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> ApiUser:
    return await register_and_login(client, "Bob")
