"""Names of the notification fan-out's exchange and queues: one contract for the relay and
the workers that declare them (``workers/topology.py``) and the operator views that read
their depths. The layout is drawn in ``workers/topology.py``."""

from __future__ import annotations

from dataclasses import dataclass

from taskstream.enums import NotificationChannel
from taskstream.settings import RabbitSettings

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
