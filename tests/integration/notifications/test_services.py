"""Notification services called directly (no broker): idempotency, preferences, the sweep,
and several relays at once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pika
import pytest
from sqlalchemy import func, select, update
from taskstream.workers.relay import OutboxRelay, RelayOptions
from taskstream.workers.topology import Topology

from taskstream.auth.models import User
from taskstream.db import transaction
from taskstream.enums import NotificationChannel, TaskStatus
from taskstream.models import Notification, NotificationPreference, Task
from taskstream.notifications.service import deliver_in_app
from taskstream.outbox.models import OutboxEvent
from taskstream.settings import Settings
from taskstream.tasks.overdue import sweep_overdue
from taskstream.tasks.read_repository import TaskReadRepository
from tests.integration.notifications.conftest import Team, add_to_outbox, task_event


async def test_redelivered_events_create_no_second_notification(session_factory, team: Team):
    events = [
        task_event(team, "task.assigned", actor=team.owner, assignee=team.alice, reviewer=team.bob)
        for _ in range(3)
    ]
    async with transaction(session_factory) as session:
        first = await deliver_in_app(session, events)
    async with transaction(session_factory) as session:
        again = await deliver_in_app(session, events + events)  # a redelivery, twice over
    assert len(first) == 6
    assert again == []
    async with session_factory() as session:
        count = await session.scalar(
            select(func.count()).where(Notification.event_id.in_([e.event_id for e in events]))
        )
    assert count == 6


async def test_preferences_and_deleted_users_are_respected(session_factory, team: Team):
    async with transaction(session_factory) as session:
        session.add(
            NotificationPreference(
                user_id=team.alice,
                event_type="task.assigned",
                channel=NotificationChannel.IN_APP,
                enabled=False,
            )
        )
        await session.execute(
            update(User).where(User.id == team.bob).values(deleted_at=datetime.now(UTC))
        )
    event = task_event(
        team,
        "task.assigned",
        actor=team.owner,
        assignee=team.alice,
        reviewer=team.bob,
        previousAssigneeId=str(team.maintainer),
    )
    async with transaction(session_factory) as session:
        created = await deliver_in_app(session, [event])
    assert [n.user_id for n in created] == [team.maintainer]


async def test_overdue_sweep_emits_once_per_task(session_factory, team: Team):
    past = datetime.now(UTC) - timedelta(hours=1)
    tasks = [
        Task(
            id=uuid.uuid4(),
            project_id=team.project_id,
            title=f"late {i}",
            deadline=past,
            assignee_id=team.alice,
            created_by=team.owner,
            status=TaskStatus.IN_PROGRESS,
        )
        for i in range(3)
    ]
    tasks.append(
        Task(
            id=uuid.uuid4(),
            project_id=team.project_id,
            title="done",
            deadline=past,
            created_by=team.owner,
            status=TaskStatus.DONE,
        )
    )
    tasks.append(
        Task(
            id=uuid.uuid4(),
            project_id=team.project_id,
            title="future",
            deadline=datetime.now(UTC) + timedelta(days=1),
            created_by=team.owner,
        )
    )
    async with transaction(session_factory) as session:
        session.add_all(tasks)
    async with transaction(session_factory) as session:
        assert await sweep_overdue(session) >= 3
    async with transaction(session_factory) as session:
        assert await sweep_overdue(session) == 0  # once per task
    ids = [t.id for t in tasks]
    async with session_factory() as session:
        events = (
            await session.scalars(
                select(OutboxEvent).where(
                    OutboxEvent.aggregate_id.in_(ids), OutboxEvent.event_type == "task.overdue"
                )
            )
        ).all()
        # counted when read
        overdue = await TaskReadRepository.from_session(session).count_overdue(team.project_id)
    assert sorted(e.aggregate_id for e in events) == sorted(t.id for t in tasks[:3])
    assert overdue == 3


@pytest.mark.usefixtures("cleanup_rabbit")
async def test_two_relays_at_once_send_each_row_once(
    notif_settings: Settings, session_factory, team: Team
):
    # Drain whatever earlier tests left unsent so the queue count below is exact.
    drain = OutboxRelay(notif_settings, session_factory, RelayOptions(batch_size=500))
    while await drain.relay_batch():
        pass
    topology = Topology.from_settings(notif_settings.rabbit)
    queue = topology.work_queue(NotificationChannel.IN_APP)
    purge = pika.BlockingConnection(pika.URLParameters(notif_settings.rabbit.url))
    purge.channel().queue_purge(queue)
    purge.close()

    events = [task_event(team, "task.updated", actor=team.owner) for _ in range(3000)]
    await add_to_outbox(session_factory, events)
    relays = [
        OutboxRelay(notif_settings, session_factory, RelayOptions(batch_size=100)) for _ in range(2)
    ]

    async def drain_with(relay: OutboxRelay) -> None:
        while await relay.relay_batch():
            await asyncio.sleep(0)

    await asyncio.gather(*(drain_with(r) for r in relays))
    for relay in [drain, *relays]:
        await relay.close()
    assert relays[0].relayed > 0 and relays[1].relayed > 0  # both did real work
    assert relays[0].relayed + relays[1].relayed == len(events)
    check = pika.BlockingConnection(pika.URLParameters(notif_settings.rabbit.url))
    depth = check.channel().queue_declare(queue, passive=True).method.message_count
    check.close()
    assert depth == len(events)  # each event published exactly once
