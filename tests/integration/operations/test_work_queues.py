"""Work queues are quorum queues with an explicit delivery limit and dead-letter target: a
message whose delivery keeps failing ends in the DLQ instead of being redelivered forever (or,
on RabbitMQ 4, dropped at the default limit)."""

from __future__ import annotations

import time
import uuid

import pika
from taskstream.workers.rabbit import RabbitChannel
from taskstream.workers.topology import Topology, declare_topology

from taskstream.enums import NotificationChannel
from taskstream.settings import Settings
from tests.integration.notifications.conftest import delete_topology


async def test_a_message_redelivered_past_the_limit_is_dead_lettered(settings: Settings) -> None:
    rabbit_settings = settings.rabbit.model_copy(
        update={"events_exchange": f"ops.{uuid.uuid4().hex[:8]}", "delivery_limit": 2}
    )
    topology = Topology.from_settings(rabbit_settings)
    rabbit = await RabbitChannel(rabbit_settings.url).open()
    try:
        await declare_topology(rabbit, topology)
    finally:
        await rabbit.close()
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_settings.url))
    try:
        channel = connection.channel()
        queue = topology.work_queue(NotificationChannel.IN_APP)
        channel.basic_publish("", queue, b"crashes its worker")
        rejected = 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            method, _, _ = channel.basic_get(queue)
            if method is None:
                if channel.queue_declare(topology.dlq, passive=True).method.message_count:
                    break
                time.sleep(0.05)
                continue
            channel.basic_nack(method.delivery_tag, requeue=True)  # as a crashed worker's
            rejected += 1
        # the first delivery and `delivery_limit` redeliveries, then never again
        assert rejected == 1 + rabbit_settings.delivery_limit
        method, _, body = channel.basic_get(topology.dlq, auto_ack=True)
        assert method is not None and body == b"crashes its worker"
    finally:
        connection.close()
        delete_topology(settings.model_copy(update={"rabbit": rabbit_settings}))
