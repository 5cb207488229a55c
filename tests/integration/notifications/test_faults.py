"""Nothing committed is lost: a RabbitMQ outage (visible in /health while it lasts), and kill -9
of the worker and the relay."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from taskstream.outbox.models import OutboxEvent
from taskstream.settings import Settings
from taskstream.web.health import health_report
from tests.integration.notifications.conftest import (
    Processes,
    SmtpSink,
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


async def test_worker_channel_loss_is_visible_in_health_and_recovers(
    notif_settings: Settings,
    session_factory,
    team: Team,
    processes: Processes,
    private_rabbit: PrivateRabbit,
    smtp_sink: SmtpSink,
) -> None:
    settings = smtp_sink.settings_for(
        notif_settings.model_copy(
            update={"rabbit": notif_settings.rabbit.model_copy(update={"url": private_rabbit.url})}
        )
    )
    env = env_for(settings)
    processes.start("relay", ["relay", "--sweep-interval", "0"], env)
    processes.start("worker", ["work", "--channels", "in_app,email,webhook"], env)

    async def workers(status: str):
        report = await health_report(settings)
        state = report.services["workers"]
        return report if state.status == status else None

    report = await wait_for(lambda: workers("up"), what="the worker's heartbeat in /health")
    assert len(report.workers) == 1
    assert set(report.workers[0].consumers) == {"in_app", "email", "webhook"}

    await asyncio.to_thread(private_rabbit.stop_app)
    report = await wait_for(
        lambda: workers("degraded"), timeout=30, what="the lost channels in /health"
    )
    consumers = report.workers[0].consumers.values()
    assert all(c.state == "recovering" and c.channel_errors >= 1 for c in consumers)

    events = [
        task_event(team, "task.assigned", actor=team.owner, assignee=team.alice) for _ in range(20)
    ]
    await add_to_outbox(session_factory, events)
    await asyncio.sleep(3)  # the consumers keep retrying against the stopped broker
    await asyncio.to_thread(private_rabbit.start_app)
    report = await wait_for(lambda: workers("up"), timeout=60, what="consumers back in /health")
    assert all(c.channel_errors >= 1 for c in report.workers[0].consumers.values())

    ids = [e.event_id for e in events]

    async def delivered() -> bool:
        return await count_notifications(session_factory, ids) >= len(ids) and len(
            smtp_sink.mailbox.messages
        ) >= len(ids)

    await wait_for(delivered, timeout=60, what="notifications after the channels came back")
    await asyncio.sleep(1)
    assert await count_notifications(session_factory, ids) == len(ids)
    assert len(smtp_sink.mailbox.messages) == len(ids)
    log = processes.log("worker")
    # Counted on every failed reopen, logged once per consumer per outage.
    assert log.count("lost its channel") == 3
    assert "unregistered channel" not in log
