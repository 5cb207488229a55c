"""What an operator sees of the attachment processors, through the real processes: a garbage
record on the command topic is dead-lettered (never dropped), the group's lag shows in
`taskstream consumers lag`, `/health` and the /ops overview, and `/metrics` of
`taskstream process-attachments` counts final states, stage durations and dead letters."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.app import create_app
from taskstream.infra.dead_letters import attachment_dead_letters, read_dead_letters
from taskstream.infra.lag import attachments_group, group_lag
from taskstream.infra.topics import delete_topics, ensure_topics
from taskstream.kafka import new_producer
from taskstream.observability.metrics_dir import MULTIPROC_ENV
from taskstream.settings import AttachmentSettings, Settings
from tests.integration.attachments.pipeline import limits, with_attachments
from tests.integration.http_support import PASSWORD, ApiUser, insert_task, register_and_login
from tests.processes import ChildProcess, taskstream_argv

pytestmark = [pytest.mark.slow]
GARBAGE = b"\x00this is not an attachment command"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def ops_settings(
    api_settings: Settings, database: str, local_attachment_settings: AttachmentSettings
) -> AsyncIterator[Settings]:
    """Own command and dead-letter topics, own group, and a known metrics port."""
    settings = with_attachments(
        api_settings, limits(local_attachment_settings), f"ops{uuid.uuid4().hex[:8]}"
    )
    settings = settings.model_copy(
        update={"metrics": settings.metrics.model_copy(update={"attachments_port": _free_port()})}
    )
    kafka = settings.kafka
    names = [kafka.attachment_commands_topic, kafka.attachment_commands_dlq_topic]
    await ensure_topics(kafka, names, partitions=2)
    yield settings
    await delete_topics(kafka, names)


def _env(settings: Settings) -> dict[str, str]:
    env = {**os.environ, **settings.as_env(), "TASKSTREAM_LOG_LEVEL": "INFO"}
    env.pop(MULTIPROC_ENV, None)  # this process's own counters, not a shared directory's
    return env


def _cli_attachment_lag(settings: Settings) -> int:
    """The attachment group's total from `taskstream consumers lag`."""
    done = subprocess.run(
        taskstream_argv("consumers", "lag"),
        env=_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    section = done.stdout.split(f"group {settings.kafka.attachments_consumer_group} ", 1)
    assert len(section) == 2, done.stdout
    total = re.search(r"^\s*total\s+(\d+)\s*$", section[1], re.MULTILINE)
    assert total is not None, done.stdout
    return int(total.group(1))


async def _admin(client: httpx.AsyncClient, factory: async_sessionmaker[AsyncSession]) -> ApiUser:
    user = await register_and_login(client, "Operator")
    async with factory() as session:
        await session.execute(
            text("UPDATE users SET role = 'admin' WHERE id = :i"), {"i": uuid.UUID(user.id)}
        )
        await session.commit()
    login = await client.post("/auth/login", json={"email": user.email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    user.token = login.json()["accessToken"]
    return user


async def _lag_views(client: httpx.AsyncClient, admin: ApiUser, settings: Settings) -> list[Any]:
    """The attachment group's total lag as the CLI, /health and /ops report it."""
    health = await client.get("/health", headers=admin.headers)
    assert health.status_code in (200, 503), health.text
    overview = await client.get("/ops/api/overview", headers=admin.headers)
    assert overview.status_code == 200, overview.text
    ops = overview.json()["attachmentLag"]
    assert ops["group"] == settings.kafka.attachments_consumer_group
    assert ops["topic"] == settings.kafka.attachment_commands_topic
    cli = await asyncio.to_thread(_cli_attachment_lag, settings)
    return [cli, health.json()["attachmentConsumerLag"], ops["total"]]


def _scrape(port: int) -> dict[str, float]:
    body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    values = {}
    for line in body.splitlines():
        if line.startswith("taskstream_attachment"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


async def _until(check: Any, timeout_s: float, what: str, child: ChildProcess) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not (value := await check()):
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"{what} not reached in {timeout_s}s; processor log:\n{child.output()}")
        await asyncio.sleep(0.1)
    return value


async def test_garbage_is_dead_lettered_and_operators_see_lag_and_metrics(
    ops_settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    settings = ops_settings
    kafka = settings.kafka
    async with AsyncTestClient(app=create_app(settings), raise_server_exceptions=False) as client:
        admin = await _admin(client, session_factory)
        user = await register_and_login(client, "Uploader")
        task = await insert_task(session_factory, user.personal_project_id, user.id)
        ids = []
        for n in range(2):
            response = await client.post(
                f"/tasks/{task}/attachments",
                params={"name": f"report-{n}.txt"},
                content=f"quarterly figures {n}\n".encode() * 200,
                headers={**user.headers, "Content-Type": "text/plain"},
            )
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        producer = new_producer(kafka)
        await producer.start()
        try:
            await producer.send_and_wait(
                kafka.attachment_commands_topic,
                value=GARBAGE,
                key=b"garbage",
                headers=[("traceparent", b"kept")],
            )
        finally:
            await producer.stop()

        # nothing processed yet: every view counts the two uploads and the garbage
        assert await _lag_views(client, admin, settings) == [3, 3, 3]

        child = ChildProcess(
            taskstream_argv("process-attachments"), _env(settings), tmp_path / "processor.log"
        ).start()
        try:

            async def settled() -> bool:
                async with session_factory() as session:
                    states = (
                        await session.execute(
                            text("SELECT state::text FROM attachments WHERE id::text = ANY(:i)"),
                            {"i": ids},
                        )
                    ).scalars()
                    return sorted(states) == ["stored", "stored"]

            async def drained() -> bool:
                return (await group_lag(kafka, 10, attachments_group(kafka))).total == 0

            await _until(settled, 120, "both attachments stored", child)
            await _until(drained, 60, "the group's lag at 0", child)

            letters = await read_dead_letters(attachment_dead_letters(kafka))
            assert len(letters) == 1, child.output()
            letter = letters[0]
            assert (letter.key, letter.value) == (b"garbage", GARBAGE)
            assert letter.original_headers == [("traceparent", b"kept")]
            assert letter.header("x-original-topic") == kafka.attachment_commands_topic
            assert letter.header("x-error")
            listed = subprocess.run(
                taskstream_argv("dlq", "list", "--attachments"),
                env=_env(settings),
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert listed.returncode == 0, listed.stderr
            assert f"{letter.id}  {kafka.attachment_commands_topic}[" in listed.stdout
            assert "1 dead letter(s)" in listed.stdout

            metrics = await asyncio.to_thread(_scrape, settings.metrics.attachments_port)
            assert metrics['taskstream_attachments_processed_total{state="stored"}'] == 2
            assert metrics["taskstream_attachment_commands_dead_lettered_total"] == 1
            for stage in ("received", "scanning", "deduplicating", "compressing"):
                key = f'taskstream_attachment_stage_duration_seconds_count{{stage="{stage}"}}'
                assert metrics[key] == 2, (stage, metrics)

            assert await _lag_views(client, admin, settings) == [0, 0, 0]
        finally:
            assert child.terminate() == 0, child.output()
