"""The webhook consumer: every message handled on its own, attempts bounded per destination.

Messages are not handled in lock-step batches: each one runs as its own task as soon as it is
delivered (RabbitMQ's prefetch bounds how many), so a slow receiver delays only the messages
that wait for it. Per destination (scheme, host, port) at most ``max_in_flight_per_host``
attempts run at once; a delivery to a destination already at its bound is *deferred* through the
first retry delay queue (no attempt counted) instead of holding a prefetch slot, so a hanging
receiver can never fill the worker's window and starve the others. Each attempt ends at its
deadline (``taskstream.notifications.webhooks.attempt_delivery``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
from pika import BasicProperties
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.db import transaction
from taskstream.enums import DeliveryStatus, NotificationChannel
from taskstream.notifications.events import PoisonEventError, decode_notification_event
from taskstream.notifications.webhook_repository import DeliveryTarget
from taskstream.notifications.webhooks import (
    AttemptResult,
    attempt_delivery,
    pending_targets,
    plan_deliveries,
    record_attempt,
)
from taskstream.observability import telemetry
from taskstream.observability.metrics import WEBHOOK_ATTEMPTS, WORKER_RETRIES
from taskstream.observability.tracing import (
    LEGACY_TRACE_ID_HEADER,
    TRACEPARENT_HEADER,
    context_from_mapping,
    log_fields,
)
from taskstream.settings import Settings

from .handling import (
    BROKER_ERRORS,
    DELIVERY_ID_HEADER,
    dead_letter,
    is_transient,
    requeue_later,
)
from .rabbit import Delivery, RabbitChannel
from .topology import Topology

log = logging.getLogger("taskstream.worker")
BATCH_WAIT_S = 0.01
REPLAYED_HEADER = "x-replayed-from-dlq"


def destination(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


class DestinationLimiter:
    """At most ``per_host`` attempts per destination (never waited for) and ``total`` overall."""

    def __init__(self, per_host: int, total: int) -> None:
        self.per_host = per_host
        self._in_flight: dict[str, int] = {}
        self._total = asyncio.Semaphore(total)

    @contextlib.contextmanager
    def claim(self, url: str) -> Iterator[bool]:
        """Yields False (and holds nothing) when the destination is at its bound."""
        key = destination(url)
        if self._in_flight.get(key, 0) >= self.per_host:
            yield False
            return
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        try:
            yield True
        finally:
            left = self._in_flight[key] - 1
            if left:
                self._in_flight[key] = left
            else:
                del self._in_flight[key]  # no entry per destination ever seen

    @property
    def total(self) -> asyncio.Semaphore:
        # Waited for: every holder finishes by its attempt deadline.
        return self._total


class WebhookDispatcher:
    def __init__(
        self,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        http: httpx.AsyncClient,
        topology: Topology,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.http = http
        self.topology = topology
        limits = settings.webhooks
        self.limiter = DestinationLimiter(limits.max_in_flight_per_host, limits.max_in_flight)
        self.deferred = 0

    async def consume(
        self, rabbit: RabbitChannel, inbox: asyncio.Queue[Any], on_done: Callable[[int], None]
    ) -> None:
        """Start a task per delivery; return (raising) when the channel fails."""
        failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        tasks: set[asyncio.Task[None]] = set()

        def finished(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            if task.cancelled():
                return
            if (exc := task.exception()) is not None and not failed.done():
                failed.set_exception(exc)
            elif exc is None:
                on_done(1)

        try:
            while True:
                getter = asyncio.ensure_future(
                    rabbit.next_batch(inbox, self.settings.rabbit.prefetch, BATCH_WAIT_S)
                )
                await asyncio.wait(  # type: ignore[type-var]  # a Future and a Task of other types
                    [getter, failed], return_when=asyncio.FIRST_COMPLETED
                )
                if failed.done():
                    getter.cancel()
                    failed.result()
                for delivery in getter.result():
                    task = asyncio.create_task(self.handle(rabbit, delivery))
                    tasks.add(task)
                    task.add_done_callback(finished)
        finally:
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def handle(self, rabbit: RabbitChannel, delivery: Delivery) -> None:
        try:
            retry_of = delivery.headers.get(DELIVERY_ID_HEADER)
            if retry_of is not None:
                async with self.session_factory() as session:
                    replayed = bool(delivery.headers.get(REPLAYED_HEADER))
                    targets = await pending_targets(
                        session, [_uuid(retry_of)], include_dead=replayed
                    )
                event_type = delivery.properties.type or ""
            else:
                try:
                    event = decode_notification_event(delivery.body)
                except PoisonEventError as exc:
                    await dead_letter(rabbit, self.topology, delivery, str(exc))
                    rabbit.ack(delivery.delivery_tag)
                    return
                async with transaction(self.session_factory) as session:
                    targets = await plan_deliveries(session, event)
                event_type = event.type
            await asyncio.gather(*(self._target(rabbit, delivery, t, event_type) for t in targets))
        except BROKER_ERRORS:
            raise  # the channel is gone: reopen it, the message comes back
        except Exception as exc:
            if is_transient(exc):
                await requeue_later(rabbit, [delivery], exc, NotificationChannel.WEBHOOK)
                return
            await dead_letter(rabbit, self.topology, delivery, f"webhook fan-out failed: {exc!r}")
        rabbit.ack(delivery.delivery_tag)

    async def _target(
        self, rabbit: RabbitChannel, delivery: Delivery, target: DeliveryTarget, event_type: str
    ) -> None:
        with self.limiter.claim(target.url) as claimed:
            if claimed:
                async with self.limiter.total:
                    await self._attempt(rabbit, delivery, target, event_type)
                return
        self.deferred += 1
        await self._publish_retry(
            rabbit, delivery, target, event_type, attempts=target.attempts, delay_after=1
        )

    async def _attempt(
        self, rabbit: RabbitChannel, delivery: Delivery, target: DeliveryTarget, event_type: str
    ) -> None:
        parent = context_from_mapping(delivery.headers)
        with telemetry.span(
            f"webhook {event_type}",
            parent,
            kind="client",
            attributes={"taskstream.delivery_id": str(target.delivery_id)},
        ) as trace:
            result = await attempt_delivery(
                self.http,
                target,
                event_type,
                delivery.body,
                self.settings.webhooks,
                traceparent=trace.traceparent if parent is not None else None,
            )
        WEBHOOK_ATTEMPTS.labels(attempt_outcome(result)).inc()
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "webhook delivery %s attempt %d: %s",
                target.delivery_id,
                target.attempts + 1,
                "delivered" if result.delivered else result.error,
                extra=log_fields(parent),
            )
        async with transaction(self.session_factory) as session:
            status, attempts = await record_attempt(
                session, target, result, self.settings.rabbit.webhook_max_attempts
            )
        delivery_id = str(target.delivery_id)
        if status is DeliveryStatus.RETRYING:
            WORKER_RETRIES.labels(NotificationChannel.WEBHOOK).inc()
            await self._publish_retry(
                rabbit, delivery, target, event_type, attempts=attempts, delay_after=attempts
            )
        elif status is DeliveryStatus.DEAD:
            copy = Delivery(
                delivery.delivery_tag,
                delivery.routing_key,
                BasicProperties(
                    content_type="application/json",
                    message_id=delivery.properties.message_id,
                    type=event_type,
                    headers={DELIVERY_ID_HEADER: delivery_id, **_trace_of(delivery)},
                ),
                delivery.body,
                delivery.redelivered,
                delivery.queue,
            )
            await dead_letter(
                rabbit,
                self.topology,
                copy,
                f"webhook delivery {delivery_id} failed {attempts} times: {result.error}",
            )

    def _publish_retry(
        self,
        rabbit: RabbitChannel,
        delivery: Delivery,
        target: DeliveryTarget,
        event_type: str,
        *,
        attempts: int,
        delay_after: int,
    ) -> Awaitable[None]:
        """The delivery comes back to the work queue after the delay of ``delay_after``
        failed attempts (confirmed before the original message is acked)."""
        props = BasicProperties(
            delivery_mode=2,
            content_type="application/json",
            message_id=delivery.properties.message_id,
            type=event_type,
            headers={
                DELIVERY_ID_HEADER: str(target.delivery_id),
                "x-attempts": attempts,
                **_trace_of(delivery),
            },
        )
        if REPLAYED_HEADER in delivery.headers:  # a replayed dead delivery stays replayable
            props.headers[REPLAYED_HEADER] = delivery.headers[REPLAYED_HEADER]
        queue = self.topology.delay_queue(delay_after)
        return rabbit.publish("", queue, delivery.body, props)


def attempt_outcome(result: AttemptResult) -> str:
    """The metric label of one attempt: delivered, http_error, timeout or failed (connection,
    refused target, protocol)."""
    if result.delivered:
        return "delivered"
    if result.status_code is not None:
        return "http_error"
    if (result.error or "").startswith("deadline"):
        return "timeout"
    return "failed"


def _trace_of(delivery: Delivery) -> dict[str, Any]:
    """The trace headers of ``delivery``, kept on its retries and dead letter."""
    headers = delivery.headers
    return {k: headers[k] for k in (TRACEPARENT_HEADER, LEGACY_TRACE_ID_HEADER) if k in headers}


def _uuid(value: object) -> uuid.UUID:
    return uuid.UUID(str(value.decode() if isinstance(value, bytes) else value))
