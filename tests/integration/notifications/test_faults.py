"""Nothing committed is lost: a RabbitMQ outage, and kill -9 of the worker and the relay."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from taskstream.messaging.models import OutboxEvent
from taskstream.settings import Settings
from tests.integration.notifications.conftest import (
    Processes,
    Team,
    add_to_outbox,
    count_notifications,
    env_for,
    notifications_of,
    task_event,
    unsent_outbox,
    wait_for,
)
from tests.integration.notifications.private_rabbit import PrivateRabbit

pytestmark = [pytest.mark.slow, pytest.mark.fault]


@pytest.fixture
def private_rabbit() -> Iterator[PrivateRabbit]:
    node = PrivateRabbit().start()
    yield node
    node.shutdown()


async def test_rabbitmq_outage_delays_but_loses_nothing(
    notif_settings: Settings,
    session_factory,
    team: Team,
    processes: Processes,
    private_rabbit: PrivateRabbit,
) -> None:
    settings = notif_settings.model_copy(
        update={"rabbit": notif_settings.rabbit.model_copy(update={"url": private_rabbit.url})}
    )
    env = env_for(settings)
    processes.start("relay", ["relay", "--sweep-interval", "0"], env)
    processes.start("worker", ["work", "--channels", "in_app"], env)

    before = task_event(team, "task.assigned", actor=team.owner, assignee=team.alice)
    await add_to_outbox(session_factory, [before])
    await wait_for(
        lambda: notifications_of(session_factory, [before.event_id]),
        what="delivery before the outage",
    )

    await asyncio.to_thread(private_rabbit.stop_app)
    during = [
        task_event(team, "task.assigned", actor=team.owner, assignee=team.bob) for _ in range(50)
    ]
    await add_to_outbox(session_factory, during)

    async def relay_noticed() -> bool:
        return "relay batch failed" in processes.log("relay")

    await wait_for(relay_noticed, what="the relay to hit the outage")
    assert await unsent_outbox(session_factory) == len(during)  # held back, not marked sent

    await asyncio.to_thread(private_rabbit.start_app)
    ids = [e.event_id for e in during]

    async def all_delivered() -> bool:
        return await count_notifications(session_factory, ids) == len(during)

    await wait_for(all_delivered, timeout=60, what="events committed during the outage")
    assert await unsent_outbox(session_factory) == 0
    rows = await notifications_of(session_factory, ids)
    assert sorted(event for _, event, _ in rows) == sorted(ids)  # each exactly once
    assert {user for user, _, _ in rows} == {team.bob}


async def test_kill_9_worker_and_relay_mid_burst_every_notification_exactly_once(
    notif_settings: Settings,
    session_factory,
    team: Team,
    processes: Processes,
    cleanup_rabbit: None,
) -> None:
    # 2 000 assignments, each notifying the assignee and the reviewer: 4 000 notifications.
    burst = [
        task_event(
            team,
            "task.assigned",
            actor=team.owner,
            assignee=team.alice if i % 2 else team.bob,
            reviewer=team.maintainer,
        )
        for i in range(2000)
    ]
    expected = {(e.event_id, uuid.UUID(e.data["assigneeId"])) for e in burst}
    expected |= {(e.event_id, team.maintainer) for e in burst}
    ids = [e.event_id for e in burst]
    env = env_for(notif_settings)

    relay = processes.start("relay", ["relay", "--sweep-interval", "0", "--batch-size", "50"], env)
    worker = processes.start("worker", ["work", "--channels", "in_app"], env)
    await add_to_outbox(session_factory, burst[:1000])

    async def worker_busy() -> bool:
        return await count_notifications(session_factory, ids) >= 300

    await wait_for(worker_busy, what="the worker to be mid-burst")
    worker.send_signal(signal.SIGKILL)
    relay.send_signal(signal.SIGKILL)
    worker.wait()
    relay.wait()
    done_at_kill = await count_notifications(session_factory, ids)
    # The second half of the burst is committed while both are dead.
    await add_to_outbox(session_factory, burst[1000:])
    assert done_at_kill < len(expected)

    processes.start("relay-2", ["relay", "--sweep-interval", "0"], env)
    processes.start("worker-2", ["work", "--channels", "in_app"], env)

    async def all_there() -> bool:
        return await count_notifications(session_factory, ids) >= len(expected)

    await wait_for(all_there, timeout=120, what="every notification after restart")
    rows = await notifications_of(session_factory, ids)
    assert len(rows) == len(expected)
    assert {(event, user) for user, event, _ in rows} == expected
    assert await unsent_outbox(session_factory) == 0
    async with session_factory() as session:
        relayed = await session.scalar(
            select(func.count()).where(
                OutboxEvent.event_id.in_(ids), OutboxEvent.sent_at.is_not(None)
            )
        )
    assert relayed == len(burst)
