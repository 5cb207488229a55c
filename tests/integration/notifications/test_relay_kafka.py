"""The relay's batched Kafka produce: every event once, keyed and partitioned by task, in
per-task order, while several batches are in flight."""

from __future__ import annotations

import asyncio
import os
import uuid

import pika
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from sqlalchemy import func, select
from taskstream.workers.kafka_batches import murmur2, partition_for
from taskstream.workers.relay import OutboxRelay, RelayOptions
from taskstream.workers.topology import Topology

from taskstream.enums import NotificationChannel
from taskstream.messages import decode_event
from taskstream.outbox.models import OutboxEvent
from taskstream.settings import Settings
from tests.integration.notifications.conftest import Team, add_to_outbox, task_event


def test_murmur2_matches_the_default_partitioner() -> None:
    keys = [os.urandom(n) for n in range(64) for _ in range(20)]
    keys += [str(uuid.uuid4()).encode() for _ in range(500)]
    partitions = list(range(6))
    for key in keys:
        assert murmur2(key) == aiokafka_murmur2(key)
        assert partition_for(key, partitions) == DefaultPartitioner()(key, partitions, partitions)


@pytest.mark.usefixtures("cleanup_rabbit")
async def test_pipelined_batches_reach_kafka_once_in_task_order(
    notif_settings: Settings, session_factory, team: Team
) -> None:
    # Drain what earlier tests left, so the RabbitMQ queue depth below is exact.
    relay = OutboxRelay(notif_settings, session_factory, RelayOptions(batch_size=100, pipeline=4))
    while await relay.drain():
        pass
    topology = Topology.from_settings(notif_settings.rabbit)
    queue = topology.work_queue(NotificationChannel.IN_APP)
    purge = pika.BlockingConnection(pika.URLParameters(notif_settings.rabbit.url))
    purge.channel().queue_purge(queue)
    purge.close()

    tasks = [uuid.uuid4() for _ in range(7)]
    events = [
        task_event(team, "task.updated", actor=team.owner, task_id=tasks[i % 7], seq=i)
        for i in range(1500)
    ]
    await add_to_outbox(session_factory, events)
    relay.relayed = 0
    while await relay.drain(max_batches=5):  # 15 batches, up to 4 in flight
        pass
    await relay.close()
    assert relay.relayed == len(events)

    ids = {e.event_id for e in events}
    async with session_factory() as session:
        unsent = await session.scalar(
            select(func.count()).where(OutboxEvent.event_id.in_(ids), OutboxEvent.sent_at.is_(None))
        )
    assert unsent == 0
    check = pika.BlockingConnection(pika.URLParameters(notif_settings.rabbit.url))
    depth = check.channel().queue_declare(queue, passive=True).method.message_count
    check.close()
    assert depth == len(events)

    consumer = AIOKafkaConsumer(
        notif_settings.kafka.task_events_topic,
        bootstrap_servers=notif_settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    seen: dict[uuid.UUID, list[int]] = {t: [] for t in tasks}
    partitions: dict[uuid.UUID, set[int]] = {t: set() for t in tasks}
    count = 0
    try:
        async with asyncio.timeout(30):
            while count < len(events):
                batch = await consumer.getmany(timeout_ms=500)
                for tp, records in batch.items():
                    for record in records:
                        event = decode_event(record.value)
                        if event.event_id not in ids:
                            continue
                        count += 1
                        assert record.key == str(event.aggregate_id).encode()
                        seen[event.aggregate_id].append(event.data["seq"])
                        partitions[event.aggregate_id].add(tp.partition)
        topic_partitions = consumer.partitions_for_topic(notif_settings.kafka.task_events_topic)
    finally:
        await consumer.stop()
    all_partitions = sorted(topic_partitions or [])
    assert count == len(events)  # each event once
    for task in tasks:
        assert seen[task] == sorted(seen[task])  # outbox order per task
        assert partitions[task] == {partition_for(str(task).encode(), all_partitions)}
