"""Health routes: probes that are cheap, anonymous and never rate limited; the detailed view
only for admins or the health token."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from taskstream.app import create_app
from taskstream.settings import Settings
from taskstream.web.ratelimit import RateLimiter
from tests.conftest import HEALTH_HEADERS
from tests.integration.http_support import ApiUser, relaxed_limits


@pytest.fixture
async def strict_app(api_settings: Settings, database, topics) -> AsyncIterator[Litestar]:
    settings = relaxed_limits(api_settings, anonymous="5/minute")
    app = create_app(settings)
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
        app.state.rate_limiter = RateLimiter(
            settings.limits, settings.redis.url, f"test-{uuid.uuid4().hex}"
        )
        app.state.test_client = client
        yield app


async def test_probes_from_one_address_are_never_rate_limited(strict_app: Litestar):
    client: httpx.AsyncClient = strict_app.state.test_client
    # a compressed minute of probes at 10/s against an anonymous limit of 5 a minute
    statuses = [
        (await client.get(path)).status_code
        for _ in range(60)
        for path in ("/health/live", "/health/ready")
    ]
    assert statuses.count(200) == 120
    # while other anonymous traffic from the same address is limited
    schema = await client.get("/schema/openapi.json")
    assert schema.status_code == 200  # the documentation is not limited either
    details = [(await client.get("/health")).status_code for _ in range(6)]
    assert details[:5] == [401] * 5 and details[-1] == 429


async def test_ready_is_cached_and_names_no_internals(strict_app: Litestar):
    client: httpx.AsyncClient = strict_app.state.test_client
    first = await client.get("/health/ready")
    assert first.status_code == 200
    assert first.json() == {
        "status": "ready",
        "checks": {"postgres": "up", "redis": "up", "kafka": "up"},
    }
    checked_at = strict_app.state.readiness._checked_at
    answers = await asyncio.gather(*(client.get("/health/ready") for _ in range(50)))
    assert {a.status_code for a in answers} == {200}
    assert strict_app.state.readiness._checked_at == checked_at  # answered from the cache
    live = await client.get("/health/live")
    assert live.json() == {"status": "up"}


async def test_detailed_health_needs_an_admin_or_the_token(
    client: httpx.AsyncClient, alice: ApiUser
):
    anonymous = await client.get("/health")
    assert anonymous.status_code == 401
    assert "127.0.0.1" not in anonymous.text
    assert (await client.get("/health", headers=alice.headers)).status_code == 403
    assert (await client.get("/health", headers={"X-Health-Token": "guess"})).status_code == 403
    detailed = await client.get("/health", headers=HEALTH_HEADERS)
    assert detailed.status_code == 200
    assert detailed.json()["services"]["postgres"]["status"] == "up"
