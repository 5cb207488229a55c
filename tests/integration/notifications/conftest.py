"""Fixtures for the notification fan-out: seeded people, outbox writes, real processes.

Every test gets its own RabbitMQ exchange (and so its own queues and DLQ) on top of the session
database, so leftovers of one test (a dead webhook, a poison message) never reach another.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pika
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from taskstream.workers.topology import Topology

from taskstream.auth.models import User
from taskstream.db import transaction
from taskstream.enums import ProjectRole
from taskstream.messages import DomainEvent
from taskstream.models import (
    Notification,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from taskstream.outbox.models import OutboxEvent
from taskstream.outbox.repository import OutboxRepository
from taskstream.projects.models import Project, ProjectMember
from taskstream.settings import Settings
from tests.processes import ChildProcess, taskstream_argv

ROOT = Path(__file__).resolve().parents[3]
SECRET = "s3cret-for-tests-0123456789"


@pytest.fixture
def notif_settings(settings: Settings, topics: object, database: str) -> Settings:
    """Session settings with a fresh exchange and quick webhook retries."""
    rabbit = settings.rabbit.model_copy(
        update={
            "events_exchange": f"{settings.rabbit.events_exchange}.{uuid.uuid4().hex[:8]}",
            "webhook_max_attempts": 3,
            "webhook_base_delay_ms": 100,
            "prefetch": 200,
        }
    )
    webhooks = settings.webhooks.model_copy(update={"attempt_deadline_s": 2.0})
    return settings.model_copy(update={"rabbit": rabbit, "webhooks": webhooks})


@pytest.fixture
def cleanup_rabbit(notif_settings: Settings) -> Iterator[None]:
    yield
    delete_topology(notif_settings)


def delete_topology(settings: Settings) -> None:
    topology = Topology.from_settings(settings.rabbit)
    connection = pika.BlockingConnection(pika.URLParameters(settings.rabbit.url))
    try:
        channel = connection.channel()
        for queue in topology.queues:
            channel.queue_delete(queue)
        channel.exchange_delete(topology.exchange)
    finally:
        connection.close()


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    return {**os.environ, **settings.as_env(), "TASKSTREAM_LOG_LEVEL": "INFO", **extra}


@dataclass
class Processes:
    """`taskstream <argv>` children, logged to files, all stopped at teardown."""

    log_dir: Path
    children: list[ChildProcess] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        child = ChildProcess(taskstream_argv(*argv), env, self.log_dir / f"{name}.log").start()
        self.children.append(child)
        assert child.process is not None
        return child.process

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self) -> None:
        for child in self.children:
            child.stop()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


async def wait_for(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 30.0, what: str = "condition"
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {result!r})")
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.25)


@dataclass
class Team:
    """A project with an owner, a maintainer, two members and a viewer."""

    project_id: uuid.UUID
    owner: uuid.UUID
    maintainer: uuid.UUID
    alice: uuid.UUID
    bob: uuid.UUID
    viewer: uuid.UUID
    emails: dict[uuid.UUID, str]


@pytest.fixture
async def team(session_factory: async_sessionmaker[AsyncSession]) -> Team:
    tag = uuid.uuid4().hex[:8]
    names = ["owner", "maintainer", "alice", "bob", "viewer"]
    users = {
        n: User(id=uuid.uuid4(), email=f"{n}-{tag}@example.test", name=n.title(), password_hash="x")
        for n in names
    }
    project_id = uuid.uuid4()
    async with transaction(session_factory) as session:
        session.add_all(users.values())
        await session.flush()
        session.add(Project(id=project_id, name=f"p-{tag}", owner_id=users["owner"].id))
        await session.flush()
        roles = {
            "owner": ProjectRole.OWNER,
            "maintainer": ProjectRole.MAINTAINER,
            "alice": ProjectRole.MEMBER,
            "bob": ProjectRole.MEMBER,
            "viewer": ProjectRole.VIEWER,
        }
        session.add_all(
            ProjectMember(project_id=project_id, user_id=users[n].id, role=r)
            for n, r in roles.items()
        )
    return Team(
        project_id,
        *(users[n].id for n in names),
        emails={u.id: u.email for u in users.values()},
    )


def task_event(
    team: Team,
    event_type: str,
    *,
    actor: uuid.UUID,
    task_id: uuid.UUID | None = None,
    assignee: uuid.UUID | None = None,
    reviewer: uuid.UUID | None = None,
    created_by: uuid.UUID | None = None,
    title: str = "Write the docs",
    **extra: Any,
) -> DomainEvent:
    task_id = task_id or uuid.uuid4()
    data = {
        "taskId": str(task_id),
        "projectId": str(team.project_id),
        "title": title,
        "status": "todo",
        "assigneeId": str(assignee) if assignee else None,
        "reviewerId": str(reviewer) if reviewer else None,
        "createdBy": str(created_by or team.owner),
        **extra,
    }
    return DomainEvent(
        event_id=uuid.uuid4(),
        type=event_type,
        occurred_at=datetime.now(UTC),
        aggregate_id=task_id,
        actor_id=actor,
        project_id=team.project_id,
        trace_id=uuid.uuid4().hex,
        data=data,
    )


async def add_to_outbox(
    session_factory: async_sessionmaker[AsyncSession], events: list[DomainEvent]
) -> None:
    async with transaction(session_factory) as session:
        for start in range(0, len(events), 1000):
            await OutboxRepository.from_session(session).add(events[start : start + 1000])


async def notifications_of(
    session_factory: async_sessionmaker[AsyncSession], event_ids: list[uuid.UUID]
) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
    """(user, event, type) of every in-app notification of these events."""
    async with session_factory() as session:
        rows = await session.execute(
            select(Notification.user_id, Notification.event_id, Notification.event_type).where(
                Notification.event_id.in_(event_ids)
            )
        )
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def count_notifications(
    session_factory: async_sessionmaker[AsyncSession], event_ids: list[uuid.UUID]
) -> int:
    async with session_factory() as session:
        stmt = select(func.count()).where(Notification.event_id.in_(event_ids))
        return int((await session.execute(stmt)).scalar_one())


async def unsent_outbox(session_factory: async_sessionmaker[AsyncSession]) -> int:
    async with session_factory() as session:
        stmt = select(func.count()).where(OutboxEvent.sent_at.is_(None))
        return int((await session.execute(stmt)).scalar_one())


@pytest.fixture
async def redis_client(settings: Settings) -> AsyncIterator[Any]:
    from redis.asyncio import Redis

    client = Redis.from_url(settings.redis.url)
    yield client
    await client.aclose()


# --- webhook receivers and an SMTP sink -------------------------------------------------------


@dataclass
class Receiver:
    """A local webhook endpoint answering with scripted status codes (then the last one)."""

    statuses: list[int]
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver_factory() -> Iterator[object]:
    servers: list[ThreadingHTTPServer] = []

    def make(statuses: list[int]) -> Receiver:
        receiver = Receiver(statuses)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append((dict(self.headers.items()), body))
                index = min(len(receiver.requests), len(receiver.statuses)) - 1
                self.send_response(receiver.statuses[index])
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        receiver.server = server
        servers.append(server)
        return receiver

    yield make
    for server in servers:
        server.shutdown()


async def subscribe(session_factory, team: Team, url: str, events: list[str]) -> uuid.UUID:
    subscription_id = uuid.uuid4()
    async with transaction(session_factory) as session:
        session.add(
            WebhookSubscription(
                id=subscription_id,
                project_id=team.project_id,
                url=url,
                events=events,
                secret=SECRET,
                created_by=team.owner,
                active=True,
            )
        )
    return subscription_id


async def delivery_of(session_factory, subscription_id: uuid.UUID):
    async with session_factory() as session:
        delivery = await session.scalar(
            select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
        )
        if delivery is None:
            return None, []
        attempts = (
            await session.scalars(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_id == delivery.id)
                .order_by(WebhookAttempt.attempt)
            )
        ).all()
        return delivery, list(attempts)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mailbox:
    """aiosmtpd handler; ``delay_s`` makes it answer DATA as slowly as a real relay might."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.delay_s = delay_s
        self.connections = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses) -> list[str]:
        self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@dataclass
class SmtpSink:
    """aiosmtpd on 127.0.0.1: a real SMTP server that keeps every message it accepts."""

    mailbox: Mailbox
    port: int

    def settings_for(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={"smtp": settings.smtp.model_copy(update={"port": self.port})}
        )

    def message_ids(self) -> list[str]:
        ids = []
        for _, _, content in list(self.mailbox.messages):
            for line in content.decode(errors="replace").splitlines():
                if line.lower().startswith("message-id:"):
                    ids.append(line.split(":", 1)[1].strip())
        return ids


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield SmtpSink(mailbox, port)
    controller.stop()
