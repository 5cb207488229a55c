"""Outbox -> relay -> RabbitMQ -> worker -> in-app notifications, with real processes."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pika
import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import select
from taskstream.workers.dlq import list_dead_letters
from taskstream.workers.topology import Topology

from taskstream.messages import decode_event
from taskstream.outbox.models import OutboxEvent
from taskstream.settings import Settings
from tests.integration.notifications.conftest import (
    Processes,
    Team,
    add_to_outbox,
    env_for,
    notifications_of,
    task_event,
    unsent_outbox,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("cleanup_rabbit")


async def test_task_lifecycle_notifies_the_right_people_once_and_live(
    notif_settings: Settings,
    session_factory,
    team: Team,
    processes: Processes,
    redis_client,
) -> None:
    task_id = uuid.uuid4()
    created = task_event(
        team, "task.created", actor=team.owner, task_id=task_id, assignee=team.alice
    )
    assigned = task_event(
        team,
        "task.assigned",
        actor=team.owner,
        task_id=task_id,
        assignee=team.bob,
        previousAssigneeId=str(team.alice),
    )
    completed = task_event(
        team, "task.completed", actor=team.bob, task_id=task_id, assignee=team.bob
    )
    events = [created, assigned, completed]

    live = redis_client.pubsub(ignore_subscribe_messages=True)
    await live.subscribe(f"taskstream:notifications:{team.maintainer}")

    env = env_for(notif_settings)
    processes.start("relay", ["relay", "--sweep-interval", "0"], env)
    processes.start("worker", ["work", "--channels", "in_app"], env)
    await add_to_outbox(session_factory, events)

    expected = {
        (team.maintainer, created.event_id),
        (team.maintainer, completed.event_id),
        (team.bob, assigned.event_id),
        (team.alice, assigned.event_id),
        (team.owner, completed.event_id),
    }
    ids = [e.event_id for e in events]

    async def all_there():
        rows = await notifications_of(session_factory, ids)
        return rows if len(rows) >= len(expected) else None

    rows = await wait_for(all_there, what="five in-app notifications")
    assert {(user, event) for user, event, _ in rows} == expected
    assert len(rows) == len(expected)  # exactly once each
    actors = {
        created.event_id: team.owner,
        assigned.event_id: team.owner,
        completed.event_id: team.bob,
    }
    assert all(user != actors[event] for user, event, _ in rows)  # never the actor
    assert all(user != team.viewer for user, _, _ in rows)

    pushed = []
    async with asyncio.timeout(10):  # get_message returns None for the subscribe confirmation
        while len(pushed) < 2:
            message = await live.get_message(timeout=1)
            if message is not None:
                pushed.append(msgspec.json.decode(message["data"]))
    assert {p["eventId"] for p in pushed} == {str(created.event_id), str(completed.event_id)}
    await live.aclose()

    async with session_factory() as session:
        sent = await session.scalars(
            select(OutboxEvent.sent_at).where(OutboxEvent.event_id.in_(ids))
        )
        assert all(s is not None for s in sent)

    # The relay also published every event to Kafka, keyed by the task id.
    consumer = AIOKafkaConsumer(
        notif_settings.kafka.task_events_topic,
        bootstrap_servers=notif_settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        found: dict[uuid.UUID, bytes] = {}
        async with asyncio.timeout(20):
            while len(found) < 3:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        event = decode_event(record.value)
                        if event.event_id in ids:
                            found[event.event_id] = record.key
    finally:
        await consumer.stop()
    assert set(found.values()) == {str(task_id).encode()}


async def test_poison_message_goes_to_dlq_with_reason_and_worker_continues(
    notif_settings: Settings, session_factory, team: Team, processes: Processes
) -> None:
    env = env_for(notif_settings)
    processes.start("worker", ["work", "--channels", "in_app"], env)
    processes.start("relay", ["relay", "--sweep-interval", "0"], env)
    topology = Topology.from_settings(notif_settings.rabbit)

    # The relay declares the topology; once the in-app work queue exists, put garbage straight
    # into it (default exchange, mandatory, confirmed): no race with the bindings being made.
    def publish_garbage() -> bool:
        connection = pika.BlockingConnection(pika.URLParameters(notif_settings.rabbit.url))
        try:
            channel = connection.channel()
            channel.queue_declare(topology.work_queue("in_app"), passive=True)
            channel.confirm_delivery()
            channel.basic_publish(
                "",
                topology.work_queue("in_app"),
                b"{not json",
                pika.BasicProperties(delivery_mode=2, message_id="poison-1"),
                mandatory=True,
            )
            return True
        except (pika.exceptions.ChannelClosedByBroker, pika.exceptions.UnroutableError):
            return False
        finally:
            if connection.is_open:
                connection.close()

    await wait_for(lambda: asyncio.to_thread(publish_garbage), what="in-app queue declared")
    good = task_event(team, "task.assigned", actor=team.owner, assignee=team.alice)
    await add_to_outbox(session_factory, [good])

    async def delivered():
        return await notifications_of(session_factory, [good.event_id])

    await wait_for(delivered, what="the valid event after the poison one")

    async def dead_letters():
        letters = await asyncio.to_thread(list_dead_letters, notif_settings.rabbit)
        return [x for x in letters if x.message_id == "poison-1"]

    letters = await wait_for(dead_letters, what="poison message in the DLQ")
    assert "undecodable" in letters[0].reason
    assert letters[0].original_queue == topology.work_queue("in_app")
    assert await unsent_outbox(session_factory) == 0
