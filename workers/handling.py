"""What every notification consumer shares: error classes, dead-lettering and requeueing.

Each helper takes the consumer's own ``RabbitChannel``: a delivery tag means something only on
the channel that delivered it, so acks, nacks and dead-letter publishes never cross consumers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import aiosmtplib
from pika import BasicProperties
from pika.exceptions import AMQPError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from taskstream.messages import DomainEvent
from taskstream.notifications.events import PoisonEventError, decode_notification_event
from taskstream.observability.metrics import WORKER_DEAD_LETTERS, WORKER_RETRIES

from .rabbit import Delivery, PublishNackedError, RabbitChannel, RabbitUnavailableError
from .topology import Topology

log = logging.getLogger("taskstream.worker")

DELIVERY_ID_HEADER = "x-delivery-id"
REASON_HEADER = "x-dead-letter-reason"
BROKER_ERRORS = (RabbitUnavailableError, PublishNackedError, AMQPError, ConnectionError)
RETRY_BACKOFF_S = 1.0


def is_transient(exc: BaseException) -> bool:
    """Worth retrying the same message later (a dependency is down), not the message's fault."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return False  # every recipient refused permanently: retrying sends nothing
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.code < 500  # 4xx: try again later; 5xx: the server will never take it
    return isinstance(
        exc, OperationalError | InterfaceError | OSError | aiosmtplib.SMTPException | TimeoutError
    )


async def dead_letter(
    rabbit: RabbitChannel, topology: Topology, delivery: Delivery, reason: str
) -> None:
    """Copy the message to the DLQ with the reason (confirmed); the caller then acks it."""
    log.warning("dead-lettering message from %s: %s", delivery.queue, reason)
    headers = {
        **delivery.headers,
        REASON_HEADER: reason[:1000],
        "x-original-queue": delivery.queue,
        "x-original-routing-key": delivery.routing_key,
        "x-dead-lettered-at": datetime.now(UTC).isoformat(),
    }
    props = BasicProperties(
        delivery_mode=2,
        content_type=delivery.properties.content_type,
        message_id=delivery.properties.message_id,
        type=delivery.properties.type,
        headers=headers,
    )
    await rabbit.publish("", topology.dlq, delivery.body, props)
    WORKER_DEAD_LETTERS.labels(topology.channel_of(delivery.queue)).inc()


async def requeue_later(
    rabbit: RabbitChannel, batch: Sequence[Delivery], exc: BaseException, channel: str
) -> None:
    log.warning("transient failure (%r); requeueing %d messages", exc, len(batch))
    WORKER_RETRIES.labels(channel).inc(len(batch))
    await asyncio.sleep(RETRY_BACKOFF_S)
    for delivery in batch:
        rabbit.requeue(delivery.delivery_tag)


async def decode_or_dead_letter(
    rabbit: RabbitChannel, topology: Topology, batch: list[Delivery]
) -> list[tuple[Delivery, DomainEvent | None]]:
    """Each delivery with its event, or None once an undecodable one is in the DLQ."""
    out: list[tuple[Delivery, DomainEvent | None]] = []
    for delivery in batch:
        try:
            out.append((delivery, decode_notification_event(delivery.body)))
        except PoisonEventError as exc:
            await dead_letter(rabbit, topology, delivery, str(exc))
            out.append((delivery, None))
    return out
