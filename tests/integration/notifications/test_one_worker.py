"""One worker process consuming in_app, email and webhook at once: every channel gets every event.

Outcomes are counted where a user would see them: messages at a real SMTP server (aiosmtpd),
POSTs at a real HTTP receiver, rows in the notifications table.
"""

from __future__ import annotations

import asyncio
import signal
import uuid

import pytest
from sqlalchemy import func, select

from taskstream.enums import DeliveryStatus
from taskstream.models import WebhookDelivery
from taskstream.settings import Settings
from tests.integration.notifications.conftest import (
    Processes,
    SmtpSink,
    Team,
    add_to_outbox,
    count_notifications,
    env_for,
    subscribe,
    task_event,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("cleanup_rabbit")
ALL_CHANNELS = ["work", "--channels", "in_app,email,webhook"]


def assignments(team: Team, count: int) -> list:
    # The owner assigns alice: one in-app row, one email (alice), one webhook delivery each.
    return [
        task_event(team, "task.assigned", actor=team.owner, assignee=team.alice, title=f"t{i}")
        for i in range(count)
    ]


async def delivered_webhooks(session_factory, subscription_id: uuid.UUID) -> int:
    async with session_factory() as session:
        stmt = select(func.count()).where(
            WebhookDelivery.subscription_id == subscription_id,
            WebhookDelivery.status == DeliveryStatus.DELIVERED,
        )
        return int((await session.execute(stmt)).scalar_one())


def distinct_deliveries(receiver) -> set[str]:
    return {headers["X-Taskstream-Delivery"] for headers, _ in list(receiver.requests)}


async def test_one_worker_delivers_every_channel_exactly_once(
    notif_settings: Settings,
    session_factory,
    team: Team,
    processes: Processes,
    receiver_factory,
    smtp_sink: SmtpSink,
) -> None:
    count = 40
    # Like a real relay, the SMTP server takes a moment per message, and the events come in
    # over time: email deliveries are in flight while in-app batches are acknowledged.
    smtp_sink.mailbox.delay_s = 0.05
    receiver = receiver_factory([200])
    subscription = await subscribe(session_factory, team, receiver.url, ["task.assigned"])
    env = env_for(smtp_sink.settings_for(notif_settings))
    processes.start("relay", ["relay", "--sweep-interval", "0"], env)
    processes.start("worker", ALL_CHANNELS, env)
    events = assignments(team, count)
    ids = [e.event_id for e in events]
    for start in range(0, count, 4):
        await add_to_outbox(session_factory, events[start : start + 4])
        await asyncio.sleep(0.1)

    async def all_arrived() -> bool:
        return (
            len(smtp_sink.mailbox.messages) >= count
            and len(receiver.requests) >= count
            and await count_notifications(session_factory, ids) >= count
        )

    await wait_for(all_arrived, timeout=60, what=f"{count} emails, webhooks and in-app rows")
    await wait_for(
        lambda: delivered_webhooks(session_factory, subscription),
        what="webhook deliveries recorded",
    )
    # Nothing more trickles in once everything was acknowledged.
    await processes_settle(processes)
    assert len(smtp_sink.mailbox.messages) == count
    assert len(set(smtp_sink.message_ids())) == count
    assert smtp_sink.mailbox.connections == 1  # one SMTP session carried every message
    assert len(receiver.requests) == count
    assert await count_notifications(session_factory, ids) == count
    assert await delivered_webhooks(session_factory, subscription) == count
    log = processes.log("worker")
    assert "unknown delivery tag" not in log
    assert "unregistered channel" not in log


async def processes_settle(processes: Processes, seconds: float = 1.5) -> None:
    await asyncio.sleep(seconds)


@pytest.mark.slow
@pytest.mark.fault
async def test_one_worker_kill_9_mid_burst_loses_nothing(
    notif_settings: Settings,
    session_factory,
    team: Team,
    processes: Processes,
    receiver_factory,
    smtp_sink: SmtpSink,
) -> None:
    count = 300
    receiver = receiver_factory([200])
    subscription = await subscribe(session_factory, team, receiver.url, ["task.assigned"])
    settings = smtp_sink.settings_for(notif_settings)
    env = env_for(settings)
    processes.start("relay", ["relay", "--sweep-interval", "0"], env)
    worker = processes.start("worker", ALL_CHANNELS, env)
    events = assignments(team, count)
    ids = [e.event_id for e in events]
    await add_to_outbox(session_factory, events)

    async def mid_burst() -> bool:
        return len(smtp_sink.mailbox.messages) >= count // 5

    await wait_for(mid_burst, timeout=60, what="the worker to be mid-burst")
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert len(smtp_sink.mailbox.messages) < count, "burst finished before the kill"
    processes.start("worker-2", ALL_CHANNELS, env)

    async def all_arrived() -> bool:
        return (
            len(set(smtp_sink.message_ids())) >= count
            and len(distinct_deliveries(receiver)) >= count
            and await count_notifications(session_factory, ids) >= count
            and await delivered_webhooks(session_factory, subscription) >= count
        )

    await wait_for(all_arrived, timeout=120, what=f"{count} of each after the restart")
    await processes_settle(processes)
    # In-app: exactly once (the row id is the dedupe key, in the same transaction).
    assert await count_notifications(session_factory, ids) == count
    # Email: every one arrives; a kill between the SMTP server's 250 and our commit resends that
    # one email (same Message-ID). The email consumer sends one message at a time: at most one.
    assert len(set(smtp_sink.message_ids())) == count
    assert count <= len(smtp_sink.mailbox.messages) <= count + 1
    # Webhooks: every delivery arrives; attempts in flight at the kill may repeat (same
    # X-Taskstream-Delivery id, receivers dedupe), at most the per-host concurrency bound.
    per_host = settings.webhooks.max_in_flight_per_host
    assert len(distinct_deliveries(receiver)) == count
    assert count <= len(receiver.requests) <= count + per_host
    assert await delivered_webhooks(session_factory, subscription) == count
    for name in ("worker", "worker-2"):
        assert "unknown delivery tag" not in processes.log(name)
