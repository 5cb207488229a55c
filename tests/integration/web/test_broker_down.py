"""A private tansu broker is stopped inside the test: 503 + Retry-After, nothing accepted.

(The shared broker on 9092 serves other test runs; it is never touched here.)
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid

import pytest
from litestar.testing import AsyncTestClient

from taskstream.app import create_app
from taskstream.infra.local import tansu_binary
from taskstream.infra.topics import ensure_topics
from taskstream.web.idempotency import derived_id
from tests.conftest import HEALTH_HEADERS
from tests.integration.http_support import ApiUser, free_port
from tests.processes import ChildProcess

pytestmark = pytest.mark.fault

PUBLISH_TIMEOUT_S = 2.0


@pytest.fixture
async def private_broker(api_settings):
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    broker = ChildProcess(
        [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url]
    ).start()
    process = broker.process
    kafka = api_settings.kafka.model_copy(
        update={"bootstrap_servers": f"127.0.0.1:{port}", "publish_timeout_s": PUBLISH_TIMEOUT_S}
    )
    for _ in range(50):
        try:
            await ensure_topics(kafka, [kafka.task_commands_topic])
            break
        except Exception:
            await asyncio.sleep(0.1)
    yield process, api_settings.model_copy(update={"kafka": kafka})
    if broker.alive():
        broker.kill()


async def test_broker_stopped_gives_503_with_retry_after_and_nothing_accepted(
    private_broker, alice: ApiUser, app_redis
):
    process, settings = private_broker
    app = create_app(settings)
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
        ok = await client.post("/tasks", json={"title": "before"}, headers=alice.headers)
        assert ok.status_code == 202, ok.text

        process.send_signal(signal.SIGKILL)
        process.wait()

        key = uuid.uuid4().hex
        headers = {**alice.headers, "Idempotency-Key": key}
        started = time.monotonic()
        down = await client.post("/tasks", json={"title": "during"}, headers=headers)
        elapsed = time.monotonic() - started
        assert down.status_code == 503, down.text
        assert down.headers["content-type"].startswith("application/problem+json")
        assert int(down.headers["retry-after"]) >= 1
        assert elapsed < PUBLISH_TIMEOUT_S + 2
        # nothing recorded as accepted, and the key is free for the client's retry
        command_id = derived_id(f"taskstream:idem:{alice.id}:{key}", 0, "command")
        assert await app_redis.get(f"taskstream:cmd:{command_id}") is None
        assert await app_redis.get(f"taskstream:idem:{alice.id}:{key}") is None

        batch = await client.post(
            "/tasks/batch",
            json={"tasks": [{"title": "a"}, {"title": "b"}]},
            headers=alice.headers,
        )
        assert batch.status_code == 503
        health = await client.get("/health", headers=HEALTH_HEADERS)
        assert health.status_code == 503
        assert health.json()["services"]["kafka"]["status"] == "down"
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json() == {
            "status": "unavailable",
            "checks": {"postgres": "up", "redis": "up", "kafka": "down"},
        }
