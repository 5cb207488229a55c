"""The operator's CLI against real services: version, admin bootstrap, status, and the
task-commands DLQ paged and replayed (pipelined) without reading the whole topic at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.auth.models import User
from taskstream.auth.passwords import verify_password
from taskstream.db import transaction
from taskstream.enums import UserRole
from taskstream.infra.topics import delete_topics, ensure_topics, topic_names
from taskstream.messages import DomainEvent
from taskstream.outbox.repository import OutboxRepository
from taskstream.settings import KafkaSettings, Settings
from tests.conftest import ROOT

PASSWORD = "correct horse 42 battery"


def cli(
    settings: Settings, *args: str, check: bool = True, **env: str
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "taskstream", *args],
        cwd=ROOT,
        env={**os.environ, **settings.as_env(), **env},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_version(settings: Settings) -> None:
    assert cli(settings, "--version").stdout.startswith("taskstream, version ")


async def _user(session_factory: async_sessionmaker[AsyncSession], email: str) -> User | None:
    async with session_factory() as session:
        return await session.scalar(select(User).where(User.email == email))


async def test_create_admin_creates_then_promotes_idempotently(
    settings: Settings, database: str, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    email = f"root-{uuid.uuid4().hex[:8]}@example.com"
    done = cli(
        settings, "users", "create-admin", "--email", email, TASKSTREAM_ADMIN_PASSWORD=PASSWORD
    )
    assert f"{email}: administrator created" in done.stdout
    user = await _user(session_factory, email)
    assert user is not None and user.role is UserRole.ADMIN
    assert await verify_password(user.password_hash, PASSWORD)
    again = cli(settings, "users", "create-admin", "--email", email)  # no password needed
    assert "administrator unchanged" in again.stdout

    member = f"member-{uuid.uuid4().hex[:8]}@example.com"
    async with transaction(session_factory) as session:
        session.add(User(id=uuid.uuid4(), email=member, name="M", password_hash="kept"))
    promoted = cli(settings, "users", "create-admin", "--email", member.upper())
    assert "administrator promoted" in promoted.stdout
    user = await _user(session_factory, member)
    assert user is not None and user.role is UserRole.ADMIN and user.password_hash == "kept"

    # a new account without a password (no prompt possible) or with a weak one is refused
    weak = cli(
        settings,
        "users",
        "create-admin",
        "--email",
        f"w-{uuid.uuid4().hex[:6]}@example.com",
        check=False,
        TASKSTREAM_ADMIN_PASSWORD="short",
    )
    assert weak.returncode != 0 and "password" in weak.stderr


async def test_status_reports_every_part(
    settings: Settings, topics: KafkaSettings, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    event = DomainEvent(
        event_id=uuid.uuid4(),
        type="project.created",
        occurred_at=datetime.now(UTC),
        aggregate_id=uuid.uuid4(),
        data={},
    )
    async with transaction(session_factory) as session:
        await OutboxRepository.from_session(session).add([event])
    report = json.loads(cli(settings, "status", "--json").stdout)
    assert {name: d["ok"] for name, d in report["dependencies"].items()} == {
        "postgres": True,
        "redis": True,
        "rabbitmq": True,
        "kafka": True,
    }
    lag = report["consumer_lag"]
    assert lag["topic"] == topics.task_commands_topic
    assert len(lag["partitions"]) == topics.partitions
    assert report["outbox"]["unsent"] >= 1 and report["outbox"]["oldest_unsent_age_s"] >= 0
    queues = {q["queue"] for q in report["rabbitmq"]["queues"]}
    assert f"{settings.rabbit.events_exchange}.dlq" in queues
    assert report["rabbitmq"]["source"] == "amqp"  # no management URL configured
    assert report["task_command_dead_letters"] == 0
    text = cli(settings, "status").stdout
    for heading in ("dependencies", "consumer lag", "outbox", "rabbitmq queues", "dead letters"):
        assert heading in text


@pytest.fixture
async def dlq_settings(settings: Settings, services_up: None) -> AsyncIterator[Settings]:
    tag = uuid.uuid4().hex[:8]
    kafka = settings.kafka.model_copy(
        update={
            "task_commands_topic": f"task-commands-d{tag}",
            "task_commands_dlq_topic": f"task-commands-d{tag}.dlq",
            "task_events_topic": f"task-events-d{tag}",
            "partitions": 2,
        }
    )
    await ensure_topics(kafka)
    yield settings.model_copy(update={"kafka": kafka})
    await delete_topics(kafka, topic_names(kafka))


async def test_dlq_list_pages_and_replay_sends_everything(dlq_settings: Settings) -> None:
    kafka = dlq_settings.kafka
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for n in range(7):
            await producer.send_and_wait(
                kafka.task_commands_dlq_topic,
                value=f"poison {n}".encode(),
                key=b"k",
                partition=n % 2,
                headers=[("x-error", b"bad"), ("traceparent", b"t")],
            )
    finally:
        await producer.stop()

    first = cli(dlq_settings, "dlq", "list", "--limit", "3").stdout.splitlines()
    assert first[-2] == "3 dead letter(s)"
    cursor = first[-1].rsplit(" ", 1)[-1]
    assert first[-1] == f"more: taskstream dlq list --limit 3 --after {cursor}"
    seen = [line.split()[0] for line in first[:3]]
    while cursor:
        page = cli(dlq_settings, "dlq", "list", "--limit", "3", "--after", cursor).stdout
        lines = page.splitlines()
        more = lines[-1].startswith("more:")
        body = lines[: -2 if more else -1]
        seen += [line.split()[0] for line in body]
        cursor = lines[-1].rsplit(" ", 1)[-1] if more else ""
    assert seen == [f"0:{o}" for o in range(4)] + [f"1:{o}" for o in range(3)]
    bad = cli(dlq_settings, "dlq", "list", "--after", "nonsense", check=False)
    assert bad.returncode == 2 and "partition" in bad.stderr

    replayed = cli(dlq_settings, "dlq", "replay")
    assert replayed.stdout.strip().endswith("7 replayed")
    assert "replaying" in replayed.stderr  # the progress bar
    missing = cli(dlq_settings, "dlq", "replay", "--id", "0:99", check=False)
    assert missing.returncode != 0 and "0:99" in missing.stderr

    consumer = AIOKafkaConsumer(
        kafka.task_commands_topic,
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        records: list = []
        while len(records) < 7:
            batch = await consumer.getmany(timeout_ms=2000)
            assert batch, f"only {len(records)} replayed records arrived"
            for rows in batch.values():
                records += rows
    finally:
        await consumer.stop()
    assert sorted(r.value for r in records) == [f"poison {n}".encode() for n in range(7)]
    for record in records:
        headers = dict(record.headers)
        assert "x-error" not in headers and headers["traceparent"] == b"t"
        assert headers["x-replayed-from"].decode() in seen
