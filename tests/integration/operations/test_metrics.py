"""Metrics with real processes: after traffic through API (two granian workers), consumer, relay
and worker, each process's /metrics moved by exactly what was sent; the probes answer; the API's
readiness opens no server connection per call."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import psutil
import pytest
from redis.asyncio import Redis

from taskstream.infra.probes import asyncpg_dsn
from taskstream.infra.topics import delete_topics, ensure_topics, topic_names
from taskstream.settings import Settings
from tests.conftest import HEALTH_HEADERS
from tests.integration.http_support import ApiServer, free_port, register_and_login
from tests.integration.notifications import conftest as notifications
from tests.integration.notifications.conftest import Processes, Receiver, env_for, wait_for
from tests.integration.operations.scrape import label_values, scrape, total

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("cleanup_rabbit")]
COMMANDS = 24
# the notification tests' fixtures: a fresh exchange, child processes, webhook receivers
notif_settings = notifications.notif_settings
cleanup_rabbit = notifications.cleanup_rabbit
processes = notifications.processes
receiver_factory = notifications.receiver_factory


@pytest.fixture
async def ops_settings(notif_settings: Settings) -> AsyncIterator[Settings]:
    """Own topics (2 partitions) and group, relaxed limits, free ports for every listener."""
    tag = uuid.uuid4().hex[:8]
    kafka = notif_settings.kafka.model_copy(
        update={
            "task_commands_topic": f"task-commands-m{tag}",
            "task_commands_dlq_topic": f"task-commands-m{tag}.dlq",
            "task_events_topic": f"task-events-m{tag}",
            "consumer_group": f"taskstream-m{tag}",
            "partitions": 2,
        }
    )
    limits = notif_settings.limits.model_copy(
        update={
            "anonymous": "100000/minute",
            "login": "100000/minute",
            "registration": "100000/hour",
        }
    )
    metrics = notif_settings.metrics.model_copy(
        update={"consume_port": free_port(), "relay_port": free_port(), "work_port": free_port()}
    )
    await ensure_topics(kafka)
    yield notif_settings.model_copy(update={"kafka": kafka, "limits": limits, "metrics": metrics})
    await delete_topics(kafka, topic_names(kafka))


@dataclass
class System:
    api: ApiServer
    settings: Settings

    def listener(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"


@pytest.fixture
async def system(ops_settings: Settings, processes: Processes) -> AsyncIterator[System]:
    env = env_for(ops_settings)
    processes.start("consumer", ["consume"], env)
    processes.start("relay", ["relay", "--sweep-interval", "0"], env)
    processes.start("worker", ["work", "--channels", "in_app,webhook"], env)
    api = ApiServer(ops_settings, workers=2).start()
    try:
        yield System(api, ops_settings)
    finally:
        api.stop()


async def test_every_process_counts_what_went_through_it(
    system: System, receiver_factory: object
) -> None:
    ports = system.settings.metrics
    receiver: Receiver = receiver_factory([200])  # type: ignore[operator]
    async with httpx.AsyncClient(base_url=system.api.url, timeout=30) as client:
        owner = await register_and_login(client, "Owner")
        hook = await client.post(
            f"/projects/{owner.personal_project_id}/webhooks",
            json={"url": receiver.url, "events": ["task.created"]},
            headers=owner.headers,
        )
        assert hook.status_code == 201, hook.text

        # every process listener is up and ready once it holds its dependencies
        for port in (ports.consume_port, ports.relay_port, ports.work_port):

            async def ready(port: int = port) -> bool:
                try:
                    live = await client.get(f"http://127.0.0.1:{port}/health/live")
                    ready = await client.get(f"http://127.0.0.1:{port}/health/ready")
                except httpx.TransportError:
                    return False
                return live.status_code == 200 and ready.status_code == 200

            await wait_for(ready, timeout=60, what=f"listener on {port} ready")

        before = await scrape(client, "/metrics", HEALTH_HEADERS)
        sent = await asyncio.gather(
            *(
                client.post(
                    "/tasks",
                    json={"title": f"task {i}", "projectId": owner.personal_project_id},
                    headers=owner.headers,
                )
                for i in range(COMMANDS)
            )
        )
        assert [r.status_code for r in sent] == [202] * COMMANDS

        # API (both workers merged): one 202 per request, one published command each
        api = await scrape(client, "/metrics", HEALTH_HEADERS)
        accepted = {"route": "/tasks", "method": "POST", "status": "202"}
        name = "taskstream_http_requests_total"
        assert total(api, name, **accepted) - total(before, name, **accepted) == COMMANDS
        latency = "taskstream_http_request_duration_seconds_count"
        assert total(api, latency, **accepted) - total(before, latency, **accepted) == COMMANDS
        published = "taskstream_kafka_published_commands_total"
        assert total(api, published) - total(before, published) == COMMANDS
        decisions = "taskstream_rate_limit_decisions_total"
        member = {"limit": "member", "decision": "allowed"}
        assert total(api, decisions, **member) - total(before, decisions, **member) >= COMMANDS
        assert total(api, "taskstream_kafka_publish_failures_total") == 0
        assert total(api, "taskstream_dependency_up", dependency="kafka") == 1

        # consumer: every command applied exactly once, nothing left behind, lag per partition
        consumer_url = f"http://127.0.0.1:{ports.consume_port}/metrics"

        async def all_applied() -> list | None:
            found = await scrape(client, consumer_url)
            applied = total(found, "taskstream_consumer_commands_total", outcome="applied")
            lag = label_values(found, "taskstream_consumer_lag", "partition")
            return found if applied >= COMMANDS and lag and sum(lag.values()) == 0 else None

        consumer = await wait_for(all_applied, timeout=60, what="commands applied")
        outcomes = label_values(consumer, "taskstream_consumer_commands_total", "outcome")
        assert outcomes.get("applied") == COMMANDS
        assert outcomes.get("rejected", 0) == outcomes.get("dead_lettered", 0) == 0
        assert set(label_values(consumer, "taskstream_consumer_lag", "partition")) == {"0", "1"}
        batches = total(consumer, "taskstream_consumer_batches_total")
        assert 1 <= batches <= COMMANDS
        assert total(consumer, "taskstream_consumer_batch_size_count") == batches
        assert total(consumer, "taskstream_consumer_batch_size_sum") == COMMANDS
        assert total(consumer, "taskstream_consumer_rebalances_total") >= 1

        # relay, then worker: each task.created reaches the in-app queue and the webhook once
        relay_url = f"http://127.0.0.1:{ports.relay_port}/metrics"
        worker_url = f"http://127.0.0.1:{ports.work_port}/metrics"

        async def relayed() -> list | None:
            found = await scrape(client, relay_url)
            done = total(found, "taskstream_relay_confirmed_events_total") >= COMMANDS
            return found if done and total(found, "taskstream_outbox_backlog") == 0 else None

        relay = await wait_for(relayed, timeout=60, what="events relayed")
        confirmed = total(relay, "taskstream_relay_confirmed_events_total")
        assert total(relay, "taskstream_relay_published_events_total") == confirmed
        assert total(relay, "taskstream_outbox_oldest_unsent_age_seconds") == 0

        async def delivered() -> list | None:
            found = await scrape(client, worker_url)
            webhooks = total(found, "taskstream_webhook_attempts_total", outcome="delivered")
            in_app = total(found, "taskstream_worker_deliveries_total", channel="in_app")
            return found if webhooks >= COMMANDS and in_app >= confirmed else None

        worker = await wait_for(delivered, timeout=60, what="notifications delivered")
        assert total(worker, "taskstream_webhook_attempts_total", outcome="delivered") == COMMANDS
        assert len(receiver.requests) == COMMANDS
        assert total(worker, "taskstream_worker_deliveries_total", channel="in_app") == confirmed
        assert total(worker, "taskstream_worker_dead_letters_total") == 0
        assert total(worker, "taskstream_rabbitmq_queue_messages", queue="dlq") == 0


# --- /health/ready reuses the API's pools -------------------------------------------------------


def _local_ports(root_pid: int, server_port: int) -> set[int]:
    """Local ports of the connections the API process tree holds to ``server_port``."""
    ports = set()
    root = psutil.Process(root_pid)
    for process in [root, *root.children(recursive=True)]:
        for connection in process.net_connections(kind="tcp"):
            if connection.raddr and connection.raddr.port == server_port:
                ports.add(connection.laddr.port)
    return ports


async def _server_side_connections(settings: Settings, api: ApiServer) -> tuple[set, set]:
    """PostgreSQL backend pids and Redis client ids serving the API's processes."""
    assert api.child.process is not None
    pid = api.child.process.pid
    pg_ports = _local_ports(pid, 5432)
    conn = await asyncpg.connect(asyncpg_dsn(settings.db.url))
    try:
        rows = await conn.fetch(
            "SELECT pid, client_port FROM pg_stat_activity WHERE datname = $1",
            settings.db.database_name,
        )
    finally:
        await conn.close()
    backends = {row["pid"] for row in rows if row["client_port"] in pg_ports}
    redis_ports = _local_ports(pid, 6379)
    redis = Redis.from_url(settings.redis.url)
    try:
        clients = await redis.client_list()
    finally:
        await redis.aclose()
    redis_ids = {c["id"] for c in clients if int(c["addr"].rsplit(":", 1)[1]) in redis_ports}
    return backends, redis_ids


async def test_readiness_reuses_the_pools(ops_settings: Settings) -> None:
    api = ApiServer(ops_settings, workers=2).start()
    try:
        async with httpx.AsyncClient(base_url=api.url, timeout=10) as client:
            # warm: each worker has run a check, so its pools hold what readiness needs
            for _ in range(6):
                assert (await client.get("/health/ready")).status_code == 200
                await asyncio.sleep(0.3)
            backends, redis_clients = await _server_side_connections(ops_settings, api)
            assert backends, "the API holds PostgreSQL connections"
            assert redis_clients, "the API holds Redis connections"
            # 50 calls spread over several cache periods (READY_CACHE_S): real checks run
            for _ in range(50):
                response = await client.get("/health/ready")
                assert response.status_code == 200, response.text
                await asyncio.sleep(0.06)
            after_backends, after_redis = await _server_side_connections(ops_settings, api)
        assert after_backends <= backends, "readiness opened PostgreSQL connections"
        assert after_redis <= redis_clients, "readiness opened Redis connections"
    finally:
        api.stop()
