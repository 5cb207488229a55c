"""Exchange, queues and bindings of the notification fan-out, declared by relay and workers alike.

Declaring everything from both sides means an event published before any worker ever ran is
still queued (a topic exchange drops what no queue is bound to).

    <exchange> (topic, durable)
      '#' -> <exchange>.in_app     quorum   in-app notifications     } x-delivery-limit, then
      '#' -> <exchange>.email      quorum   email                    } dead-lettered to
      '#' -> <exchange>.webhook    quorum   webhook fan-out, retries } <exchange>.dlq
    <exchange>.webhook.delay.<ms>ms classic, x-message-ttl=<ms>, dead-letters back to .webhook
                                   (retries, and deliveries deferred while their host is busy)
    <exchange>.dlq                 quorum   poison messages and dead webhook deliveries
"""

from __future__ import annotations

from taskstream.enums import NotificationChannel
from taskstream.infra.rabbit_topology import QUORUM, Topology

from .rabbit import RabbitChannel


async def declare_topology(rabbit: RabbitChannel, topology: Topology) -> None:
    """Idempotently declare the exchange, work queues, delay queues and the DLQ."""
    channel = rabbit.channel
    await rabbit.rpc(
        channel.exchange_declare,
        exchange=topology.exchange,
        exchange_type="topic",
        durable=True,
    )
    for notification_channel in NotificationChannel:
        queue = topology.work_queue(notification_channel)
        await rabbit.declare_queue(queue, topology.work_queue_arguments)
        await rabbit.rpc(
            channel.queue_bind, queue=queue, exchange=topology.exchange, routing_key="#"
        )
    for failed in topology.delay_steps:
        await rabbit.declare_queue(
            topology.delay_queue(failed),
            {
                "x-message-ttl": topology.retry_delay_ms(failed),
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": topology.work_queue(NotificationChannel.WEBHOOK),
            },
        )
    await rabbit.declare_queue(topology.dlq, QUORUM)
