"""Helpers for the stream-consumer tests: seed data, build commands, read outcomes."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer

from taskstream.enums import ProjectRole, UserRole
from taskstream.infra.lag import group_lag
from taskstream.infra.probes import asyncpg_dsn
from taskstream.infra.topics import ensure_topics
from taskstream.messages import (
    Actor,
    CommandPayload,
    CreateTask,
    TaskCommand,
    encode_command,
    new_command,
)
from taskstream.settings import KafkaSettings, Settings
from taskstream.tasks.repository import COMMANDS_CHANNEL
from tests.conftest import ROOT
from tests.processes import ChildProcess, taskstream_argv


@dataclass
class Team:
    """A project with an owner, two members and a viewer."""

    project_id: uuid.UUID
    owner: uuid.UUID
    members: list[uuid.UUID]
    viewer: uuid.UUID
    outsider: uuid.UUID

    def actor(self, user: uuid.UUID | None = None) -> Actor:
        return Actor(user_id=user or self.owner, role=UserRole.MEMBER)


async def seed_team(dsn: str) -> Team:
    conn = await asyncpg.connect(dsn)
    try:
        users = [uuid.uuid4() for _ in range(5)]
        await conn.executemany(
            "INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, $3, 'x')",
            [(u, f"{u}@example.com", f"user {u.hex[:6]}") for u in users],
        )
        project = uuid.uuid4()
        await conn.execute(
            "INSERT INTO projects (id, name, owner_id) VALUES ($1, 'p', $2)", project, users[0]
        )
        roles = [ProjectRole.OWNER, ProjectRole.MEMBER, ProjectRole.MEMBER, ProjectRole.VIEWER]
        await conn.executemany(
            "INSERT INTO project_members (project_id, user_id, role) VALUES ($1, $2, $3)",
            [(project, u, r.value) for u, r in zip(users, roles, strict=False)],
        )
    finally:
        await conn.close()
    return Team(project, users[0], users[1:3], users[3], users[4])


def create_command(team: Team, title: str = "a task", **fields: object) -> TaskCommand:
    payload = CreateTask(project_id=team.project_id, title=title, **fields)  # type: ignore[arg-type]
    return new_command(payload, actor=team.actor(), task_id=uuid.uuid4())


def command_on(
    team: Team, task_id: uuid.UUID, payload: CommandPayload, user: uuid.UUID | None = None
) -> TaskCommand:
    return new_command(payload, actor=team.actor(user), task_id=task_id)


async def produce(
    bootstrap: str,
    topic: str,
    messages: list[tuple[bytes, bytes, list[tuple[str, bytes]]]],
) -> None:
    """Send (key, value, headers) with acks=all and wait for every ack."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=v, key=k, headers=h) for k, v, h in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def as_message(command: TaskCommand) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    trace = [("x-trace-id", uuid.uuid4().hex.encode())]
    return str(command.task_id).encode(), encode_command(command), trace


async def wait_for(
    dsn: str,
    condition: Callable[[asyncpg.Connection], Awaitable[bool]],
    timeout: float,
    what: str = "condition",
) -> None:
    """Wait until ``condition`` holds, woken by the consumers' NOTIFY (not by sleeping)."""
    conn = await asyncpg.connect(dsn)
    woken = asyncio.Event()
    await conn.add_listener(COMMANDS_CHANNEL, lambda *_: woken.set())
    deadline = time.monotonic() + timeout
    try:
        while not await condition(conn):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            woken.clear()
            # The bounded wait only covers wake-ups that cannot notify (a DLQ, a restart).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), min(remaining, 1.0))
    finally:
        await conn.close()


async def count_statuses(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM command_statuses"))


def consumer_process(env: dict[str, str], log: Path) -> ChildProcess:
    """A real `taskstream consume` child process (call ``.start()``)."""
    return ChildProcess(taskstream_argv("consume"), env, log)


def consumer_env(base: dict[str, str], **overrides: str) -> dict[str, str]:
    env = dict(base)
    env.setdefault("TASKSTREAM_KAFKA__SESSION_TIMEOUT_MS", "6000")
    env.update({f"TASKSTREAM_{k.upper()}": v for k, v in overrides.items()})
    return env


def dsn_of(url: str) -> str:
    return asyncpg_dsn(url)


def partitions_assigned(consumer: ChildProcess) -> list[list[int]]:
    """Every assignment a consumer process logged, oldest first."""
    found = []
    for line in consumer.output().splitlines():
        if "partitions assigned: " in line:
            found.append(ast.literal_eval(line.split("partitions assigned: ", 1)[1]))
    return found


@dataclass
class Lane:
    """Own topics and consumer group for one test, on the session's database."""

    kafka: KafkaSettings
    env: dict[str, str]
    dsn: str

    @classmethod
    async def create(
        cls, settings: Settings, settings_env: dict[str, str], database_url: str, **env: str
    ) -> Lane:
        suffix = uuid.uuid4().hex[:8]
        kafka = settings.kafka.model_copy(
            update={
                "task_commands_topic": f"{settings.kafka.task_commands_topic}-{suffix}",
                "task_commands_dlq_topic": f"{settings.kafka.task_commands_topic}-{suffix}.dlq",
                "consumer_group": f"{settings.kafka.consumer_group}-{suffix}",
            }
        )
        await ensure_topics(kafka, [kafka.task_commands_topic, kafka.task_commands_dlq_topic])
        child_env = {
            **settings_env,
            "TASKSTREAM_DB__URL": database_url,
            "TASKSTREAM_KAFKA__TASK_COMMANDS_TOPIC": kafka.task_commands_topic,
            "TASKSTREAM_KAFKA__TASK_COMMANDS_DLQ_TOPIC": kafka.task_commands_dlq_topic,
            "TASKSTREAM_KAFKA__CONSUMER_GROUP": kafka.consumer_group,
            "TASKSTREAM_KAFKA__SESSION_TIMEOUT_MS": "6000",
            **env,
        }
        return cls(kafka, child_env, asyncpg_dsn(database_url))

    def settled(
        self, ids: list[uuid.UUID], expected: int
    ) -> Callable[[asyncpg.Connection], Awaitable[bool]]:
        async def condition(conn: asyncpg.Connection) -> bool:
            n = await conn.fetchval(
                "SELECT count(*) FROM command_statuses WHERE command_id = ANY($1)", ids
            )
            return int(n) >= expected

        return condition

    def cli(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "taskstream", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    async def assert_exactly_once(self, creates: list[TaskCommand]) -> None:
        """Sets, not counts: every create made its task, with exactly one audit row."""
        conn = await asyncpg.connect(self.dsn)
        try:
            task_ids = [c.task_id for c in creates]
            found = await conn.fetch("SELECT id FROM tasks WHERE id = ANY($1)", task_ids)
            assert {r["id"] for r in found} == set(task_ids)
            audit = await conn.fetch(
                "SELECT command_id, count(*) AS n FROM task_events WHERE task_id = ANY($1) "
                "AND event_type = 'task.created' GROUP BY command_id",
                task_ids,
            )
            assert {r["command_id"] for r in audit} == {c.command_id for c in creates}
            doubled = [r["command_id"] for r in audit if r["n"] != 1]
            assert doubled == []
        finally:
            await conn.close()


async def wait_for_zero_lag(kafka: KafkaSettings, timeout: float) -> None:
    """The group committed everything (commits follow the DB commit by a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        report = await group_lag(kafka, timeout_s=10)
        if report.total == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"lag still {report.total}: {report.partitions}")
        await asyncio.sleep(0.3)
