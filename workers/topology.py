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

from dataclasses import dataclass

from taskstream.enums import NotificationChannel
from taskstream.settings import RabbitSettings

from .rabbit import RabbitChannel

QUORUM = {"x-queue-type": "quorum"}


@dataclass(frozen=True, slots=True)
class Topology:
    exchange: str
    webhook_max_attempts: int
    webhook_base_delay_ms: int
    delivery_limit: int = 20

    @classmethod
    def from_settings(cls, settings: RabbitSettings) -> Topology:
        return cls(
            settings.events_exchange,
            settings.webhook_max_attempts,
            settings.webhook_base_delay_ms,
            settings.delivery_limit,
        )

    def work_queue(self, channel: NotificationChannel | str) -> str:
        return f"{self.exchange}.{NotificationChannel(channel).value}"

    def channel_of(self, queue: str) -> str:
        """The notification channel a work queue serves ("unknown" for any other queue)."""
        prefix, _, channel = queue.rpartition(".")
        known = prefix == self.exchange and channel in NotificationChannel._value2member_map_
        return channel if known else "unknown"

    @property
    def dlq(self) -> str:
        return f"{self.exchange}.dlq"

    def retry_delay_ms(self, failed_attempts: int) -> int:
        """Exponential backoff: base, 2x base, 4x base ... after the 1st, 2nd, 3rd failure."""
        return self.webhook_base_delay_ms * 2 ** (failed_attempts - 1)

    def delay_queue(self, failed_attempts: int) -> str:
        # The TTL is part of the name: changing the settings declares new queues instead of
        # failing with PRECONDITION_FAILED on the old queue's arguments.
        return f"{self.exchange}.webhook.delay.{self.retry_delay_ms(failed_attempts)}ms"

    @property
    def work_queue_arguments(self) -> dict[str, object]:
        """A message redelivered ``delivery_limit`` times (its worker crashed or lost the
        channel each time) goes to the DLQ: explicit, because RabbitMQ 4 otherwise drops it."""
        return {
            **QUORUM,
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": self.dlq,
        }

    @property
    def delay_steps(self) -> range:
        # The first delay queue exists even with a single attempt: deliveries deferred because
        # their destination is busy wait in it without counting an attempt.
        return range(1, max(2, self.webhook_max_attempts))

    @property
    def queues(self) -> list[str]:
        names = [self.work_queue(c) for c in NotificationChannel]
        names += [self.delay_queue(n) for n in self.delay_steps]
        return [*names, self.dlq]


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
