"""Helpers shared by the API tests: users, tokens, reading commands back from Kafka."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import text

from taskstream.auth.tokens import hash_refresh_token
from taskstream.messages import TaskCommand, decode_command
from taskstream.settings import Settings
from tests.processes import ChildProcess, taskstream_argv

PASSWORD = "correct horse 42 battery"


@dataclass
class ApiUser:
    id: str
    email: str
    token: str
    refresh_token: str
    personal_project_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def register_and_login(client: httpx.AsyncClient, name: str = "Ada") -> ApiUser:
    email = f"{name.lower()}-{uuid.uuid4().hex[:12]}@example.com"
    reg = await client.post(
        "/auth/register", json={"name": name, "email": email, "password": PASSWORD}
    )
    assert reg.status_code == 201, reg.text
    login = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    body = reg.json()
    tokens = login.json()
    return ApiUser(
        body["id"], email, tokens["accessToken"], tokens["refreshToken"], body["personalProjectId"]
    )


async def age_refresh_rotation(session_factory: Any, refresh_token: str, seconds: float) -> None:
    """Pretend the rotation of ``refresh_token`` happened ``seconds`` earlier (past the reuse
    grace window) without waiting for it."""
    async with session_factory() as session:
        await session.execute(
            text(
                "UPDATE refresh_sessions SET used_at = used_at - make_interval(secs => :s)"
                " WHERE token_hash = :h"
            ),
            {"s": seconds, "h": hash_refresh_token(refresh_token)},
        )
        await session.commit()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def relaxed_limits(settings: Settings, **overrides: Any) -> Settings:
    """The test settings with limits high enough that only the 429 tests hit them."""
    limits = settings.limits.model_copy(
        update={
            "anonymous": "100000/minute",
            "login": "100000/minute",
            "registration": "100000/hour",
            **overrides,
        }
    )
    return settings.model_copy(update={"limits": limits})


async def read_commands(
    settings: Settings,
    wanted: set[uuid.UUID],
    timeout_s: float = 15.0,
    *,
    collect_all: bool = False,
) -> dict[uuid.UUID, tuple[bytes | None, TaskCommand, dict[str, bytes]]]:
    """Read the task-commands topic from the start with a plain aiokafka consumer (no group)
    until every wanted command id has been seen (``collect_all``: and the topic is drained;
    every command read is returned)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: dict[uuid.UUID, tuple[bytes | None, TaskCommand, dict[str, bytes]]] = {}
    try:
        partitions = consumer.partitions_for_topic(settings.kafka.task_commands_topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(settings.kafka.task_commands_topic)
        tps = [TopicPartition(settings.kafka.task_commands_topic, p) for p in partitions or []]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        async with asyncio.timeout(timeout_s):
            drained = False
            while not wanted <= set(found) or (collect_all and not drained):
                batches = await consumer.getmany(timeout_ms=500)
                drained = not batches and wanted <= set(found)
                for records in batches.values():
                    for record in records:
                        command = decode_command(record.value)
                        if collect_all or command.command_id in wanted:
                            found[command.command_id] = (
                                record.key,
                                command,
                                dict(record.headers or []),
                            )
    finally:
        await consumer.stop()
    return found


async def insert_task(session_factory: Any, project_id: str, created_by: str, **values: Any) -> str:
    """A task row as the consumer would write it (until the consumer lands, reads use this)."""
    from sqlalchemy import text

    task_id = str(values.pop("id", uuid.uuid4()))
    row = {
        "id": task_id,
        "project_id": project_id,
        "created_by": created_by,
        "title": values.pop("title", "A task"),
        "status": values.pop("status", "todo"),
        "priority": values.pop("priority", "medium"),
        "deadline": values.pop("deadline", None),
        "assignee_id": values.pop("assignee_id", None),
    }
    assert not values, values
    async with session_factory() as session:
        await session.execute(
            text(
                "INSERT INTO tasks (id, project_id, created_by, title, status, priority, deadline,"
                " assignee_id) VALUES (:id, :project_id, :created_by, :title,"
                " CAST(:status AS task_status), CAST(:priority AS task_priority), :deadline,"
                " :assignee_id)"
            ),
            row,
        )
        await session.commit()
    return task_id


class ApiServer:
    """``taskstream api`` (granian) in a child process with the given settings."""

    def __init__(self, settings: Settings, *, workers: int = 1, factory: str | None = None):
        self.settings = settings
        self.port = free_port()
        argv = ["api", *(["--factory", factory] if factory else [])]
        env = {
            **os.environ,
            **settings.as_env(),
            "TASKSTREAM_API__PORT": str(self.port),
            "TASKSTREAM_API__WORKERS": str(workers),
        }
        self.child = ChildProcess(taskstream_argv(*argv), env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ApiServer:
        self.child.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not self.child.alive():
                raise RuntimeError("API server exited before it answered")
            try:
                response = httpx.post(f"{self.url}/auth/login", json={}, timeout=2)
                if response.status_code < 500:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("API server did not start within 30 s")

    def stop(self) -> None:
        self.child.stop()


async def join_project(
    client: httpx.AsyncClient,
    project_id: str,
    inviter_headers: dict[str, str],
    invitee_email: str,
    invitee_headers: dict[str, str],
    role: str = "member",
) -> None:
    """Make a user a member the way a team does: an invitation of their address, accepted."""
    invited = await client.post(
        f"/projects/{project_id}/invitations",
        json={"email": invitee_email, "role": role},
        headers=inviter_headers,
    )
    assert invited.status_code == 201, invited.text
    accepted = await client.post(
        f"/invitations/{invited.json()['id']}/accept", headers=invitee_headers
    )
    assert accepted.status_code == 200, accepted.text
