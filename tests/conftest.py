"""Shared fixtures. Integration fixtures talk to the real services brought up by `make test`
(`taskstream infra up`); each test session gets its own database, topics and consumer group,
so concurrent runs never share state."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from taskstream.db import create_engine, create_session_factory
from taskstream.infra.probes import probe_all
from taskstream.infra.scratch import create_database, drop_database, isolated_settings
from taskstream.infra.topics import ensure_topics
from taskstream.settings import KafkaSettings, Settings

ROOT = Path(__file__).resolve().parents[1]
RUN_ID = uuid.uuid4().hex[:10]
# opens the detailed GET /health to the tests (X-Health-Token)
HEALTH_TOKEN = f"health-{RUN_ID}"
HEALTH_HEADERS = {"X-Health-Token": HEALTH_TOKEN}


def make_settings(**overrides: object) -> Settings:
    """Settings for this test session: own database, topics, group, exchange and rate-limit
    counters (``isolated_settings``); real services."""
    base = isolated_settings(Settings(environment="test"), RUN_ID, db_prefix="taskstream_test")
    db = base.db.model_copy(update={"pool_size": 5})
    kafka = base.kafka.model_copy(update={"partitions": 4})
    infra = base.infra.model_copy(update={"state_dir": ROOT / ".taskstream"})
    # Test receivers listen on loopback over plain http: allowed here, refused by default.
    webhooks = base.webhooks.model_copy(
        update={"allowed_targets": ["127.0.0.0/8"], "allow_http": True}
    )
    api = base.api.model_copy(update={"health_token": SecretStr(HEALTH_TOKEN)})
    # Process listeners off: concurrent processes and test runs would race for the fixed
    # ports; tests that scrape them give each its own free port.
    metrics = base.metrics.model_copy(
        update={"consume_port": 0, "relay_port": 0, "work_port": 0, "attachments_port": 0}
    )
    values = {
        "db": db,
        "webhooks": webhooks,
        "kafka": kafka,
        "infra": infra,
        "api": api,
        "metrics": metrics,
        **overrides,
    }
    return base.model_copy(update=values)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
def settings_env(settings: Settings) -> dict[str, str]:
    """Environment for child processes (`taskstream ...`) that must see the same settings."""
    return {**os.environ, **settings.as_env()}


@pytest.fixture(scope="session")
async def services_up(settings: Settings) -> None:
    """Fail loudly (never skip) when a real service is missing: run `make test`."""
    results = await probe_all(settings)
    down = {name: r.detail for name, r in results.items() if not r.ok}
    if down:
        pytest.fail(f"services not reachable: {down}; run `taskstream infra up` (make test does)")


@pytest.fixture(scope="session")
async def database(settings: Settings, services_up: None) -> AsyncIterator[str]:
    """A fresh database built by `alembic upgrade head`, dropped after the session."""
    await create_database(settings, ROOT)
    yield settings.db.url
    await drop_database(settings)


@pytest.fixture(scope="session")
async def topics(settings: Settings, services_up: None) -> AsyncIterator[KafkaSettings]:
    """This session's topics; deleted afterwards (tansu keeps every topic in memory)."""
    await ensure_topics(settings.kafka)
    yield settings.kafka
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        ours = [name for name in existing if RUN_ID in name]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def engine(settings: Settings, database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.db)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


@pytest.fixture
async def session(session_factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with session_factory() as session:
        yield session
