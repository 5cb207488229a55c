"""Webhooks (signed, retried through delay queues, dead-lettered) and email over real SMTP."""

from __future__ import annotations

import asyncio

import pika
import pytest
from sqlalchemy import select
from taskstream.workers.dlq import list_dead_letters
from taskstream.workers.topology import Topology

from taskstream.db import transaction
from taskstream.enums import DeliveryStatus, NotificationChannel
from taskstream.models import EmailDelivery, NotificationPreference
from taskstream.notifications.webhooks import verify
from taskstream.settings import Settings
from tests.integration.notifications.conftest import (
    SECRET,
    Mailbox,
    Processes,
    Team,
    add_to_outbox,
    delivery_of,
    env_for,
    free_port,
    subscribe,
    task_event,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("cleanup_rabbit")


def queue_depths(settings: Settings) -> dict[str, int]:
    topology = Topology.from_settings(settings.rabbit)
    connection = pika.BlockingConnection(pika.URLParameters(settings.rabbit.url))
    try:
        channel = connection.channel()
        return {
            q: channel.queue_declare(q, passive=True).method.message_count
            for q in topology.queues
            if ".webhook" in q
        }
    finally:
        connection.close()


async def test_webhook_signed_retried_and_delivered_once(
    notif_settings: Settings,
    session_factory,
    team: Team,
    processes: Processes,
    receiver_factory,
) -> None:
    flaky = receiver_factory([500, 500, 200])
    unrelated = receiver_factory([200])
    flaky_sub = await subscribe(session_factory, team, flaky.url, ["task.created"])
    await subscribe(session_factory, team, unrelated.url, ["task.completed"])
    env = env_for(notif_settings)
    processes.start("relay", ["relay", "--sweep-interval", "0"], env)
    processes.start("worker", ["work", "--channels", "webhook"], env)
    event = task_event(team, "task.created", actor=team.owner, assignee=team.alice)
    await add_to_outbox(session_factory, [event])

    async def delivered():
        delivery, attempts = await delivery_of(session_factory, flaky_sub)
        ok = delivery is not None and delivery.status is DeliveryStatus.DELIVERED
        return (delivery, attempts) if ok else None

    delivery, attempts = await wait_for(delivered, what="webhook delivered")
    assert delivery.attempts == 3
    assert [a.status_code for a in attempts] == [500, 500, 200]
    assert [a.attempt for a in attempts] == [1, 2, 3]

    assert len(flaky.requests) == 3
    delivery_ids = {headers["X-Taskstream-Delivery"] for headers, _ in flaky.requests}
    assert delivery_ids == {str(delivery.id)}  # stable across retries: receivers dedupe on it
    assert [h["X-Taskstream-Attempt"] for h, _ in flaky.requests] == ["1", "2", "3"]
    for headers, body in flaky.requests:
        assert verify(
            SECRET, headers["X-Taskstream-Timestamp"], body, headers["X-Taskstream-Signature"]
        )
        assert not verify(
            "wrong-secret-0123456789",
            headers["X-Taskstream-Timestamp"],
            body,
            headers["X-Taskstream-Signature"],
        )
        assert headers["X-Taskstream-Event"] == "task.created"
        assert str(event.event_id).encode() in body
    # Nothing left to retry: work and delay queues are empty, so no second success will come.
    await wait_for(
        lambda: asyncio.to_thread(lambda: not any(queue_depths(notif_settings).values())),
        what="empty webhook queues",
    )
    assert len(flaky.requests) == 3
    assert unrelated.requests == []


async def test_webhook_always_failing_is_dead_lettered(
    notif_settings: Settings,
    session_factory,
    team: Team,
    processes: Processes,
    receiver_factory,
) -> None:
    broken = receiver_factory([503])
    subscription = await subscribe(session_factory, team, broken.url, ["*"])
    env = env_for(notif_settings)
    processes.start("relay", ["relay", "--sweep-interval", "0"], env)
    processes.start("worker", ["work", "--channels", "webhook"], env)
    event = task_event(team, "task.completed", actor=team.bob, assignee=team.bob)
    await add_to_outbox(session_factory, [event])

    async def dead():
        delivery, attempts = await delivery_of(session_factory, subscription)
        ok = delivery is not None and delivery.status is DeliveryStatus.DEAD
        return (delivery, attempts) if ok else None

    delivery, attempts = await wait_for(dead, what="webhook dead")
    max_attempts = notif_settings.rabbit.webhook_max_attempts
    assert delivery.attempts == max_attempts == len(attempts)
    assert all(a.status_code == 503 for a in attempts)

    async def in_dlq():
        letters = await asyncio.to_thread(list_dead_letters, notif_settings.rabbit)
        return [
            x
            for x in letters
            if x.headers.get("x-delivery-id") in (str(delivery.id), str(delivery.id).encode())
        ]

    letters = await wait_for(in_dlq, what="dead webhook in the DLQ")
    assert f"failed {max_attempts} times" in letters[0].reason
    assert len(broken.requests) == max_attempts


async def test_email_reaches_smtp_server_respecting_preferences(
    notif_settings: Settings, session_factory, team: Team, processes: Processes
) -> None:
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        async with transaction(session_factory) as session:
            session.add(
                NotificationPreference(
                    user_id=team.bob,
                    event_type="task.assigned",
                    channel=NotificationChannel.EMAIL,
                    enabled=False,
                )
            )
        settings = notif_settings.model_copy(
            update={"smtp": notif_settings.smtp.model_copy(update={"port": port})}
        )
        env = env_for(settings)
        processes.start("relay", ["relay", "--sweep-interval", "0"], env)
        processes.start("worker", ["work", "--channels", "email"], env)
        # alice is the new assignee; bob (previous assignee) switched assignment emails off.
        event = task_event(
            team,
            "task.assigned",
            actor=team.owner,
            assignee=team.alice,
            previousAssigneeId=str(team.bob),
            title="Ship it",
        )

        await add_to_outbox(session_factory, [event])

        async def emailed():
            async with session_factory() as session:
                return (
                    await session.scalars(
                        select(EmailDelivery).where(EmailDelivery.event_id == event.event_id)
                    )
                ).all()

        rows = await wait_for(emailed, what="email delivery row")
        await wait_for(lambda: asyncio.sleep(0, result=mailbox.messages), what="SMTP message")
        assert [r.user_id for r in rows] == [team.alice]
        assert len(mailbox.messages) == 1
        _, recipients, content = mailbox.messages[0]
        assert recipients == [team.emails[team.alice]]
        assert b"Task assigned: Ship it" in content
        assert f"<{rows[0].id}@taskstream>".encode() in content
    finally:
        smtp.stop()
