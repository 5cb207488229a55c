"""`taskstream work`: consume the notification queues and call the notification services.

Thin shell: decode, call ``taskstream.notifications``, ack only after the effect is committed
(manual acks, prefetch from settings). Undecodable messages go to the DLQ with a reason and the
worker carries on; transient failures (database, SMTP) requeue after a backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import httpx
from pika import BasicProperties
from pika.exceptions import AMQPError
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.db import create_engine, create_session_factory, transaction
from taskstream.enums import DeliveryStatus, NotificationChannel
from taskstream.messages import DomainEvent
from taskstream.notifications.email import deliver_email
from taskstream.notifications.events import PoisonEventError, decode_notification_event
from taskstream.notifications.live import publish_live
from taskstream.notifications.schemas import LiveNotification
from taskstream.notifications.service import deliver_in_app
from taskstream.notifications.webhook_repository import DeliveryTarget
from taskstream.notifications.webhooks import (
    attempt_delivery,
    pending_targets,
    plan_deliveries,
    record_attempt,
)
from taskstream.settings import Settings
from workers.rabbit import Delivery, PublishNackedError, RabbitChannel, RabbitUnavailableError
from workers.topology import Topology, declare_topology

log = logging.getLogger("taskstream.worker")

DELIVERY_ID_HEADER = "x-delivery-id"
REASON_HEADER = "x-dead-letter-reason"
BROKER_ERRORS = (RabbitUnavailableError, PublishNackedError, AMQPError, ConnectionError)
BATCH_WAIT_S = 0.01
RETRY_BACKOFF_S = 1.0


def is_transient(exc: BaseException) -> bool:
    """Worth retrying the same message later (a dependency is down), not the message's fault."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc, OperationalError | InterfaceError | OSError | smtplib.SMTPException | TimeoutError
    )


class NotificationWorker:
    def __init__(
        self,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        redis: Redis,
        http: httpx.AsyncClient,
        channels: Sequence[NotificationChannel],
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.redis = redis
        self.http = http
        self.channels = list(channels)
        self.topology = Topology.from_settings(settings.rabbit)
        self.rabbit: RabbitChannel | None = None
        self.handlers: dict[NotificationChannel, Callable[[list[Delivery]], Awaitable[None]]] = {
            NotificationChannel.IN_APP: self.handle_in_app,
            NotificationChannel.EMAIL: self.handle_email,
            NotificationChannel.WEBHOOK: self.handle_webhook,
        }
        self.processed = 0

    # --- plumbing ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop``; reconnect with backoff when RabbitMQ goes away."""
        backoff = 0.2
        while not stop.is_set():
            try:
                rabbit = await RabbitChannel(
                    self.settings.rabbit.url, confirms=True, prefetch=self.settings.rabbit.prefetch
                ).open()
                self.rabbit = rabbit
                await declare_topology(rabbit, self.topology)
                loops = [asyncio.create_task(self._consume(rabbit, c)) for c in self.channels]
                stopper = asyncio.create_task(stop.wait())
                log.info("worker consuming %s", ", ".join(c.value for c in self.channels))
                backoff = 0.2
                done, pending = await asyncio.wait(
                    [*loops, stopper], return_when=asyncio.FIRST_COMPLETED
                )
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                await rabbit.close()
                for task in done:
                    if task is not stopper:
                        task.result()
            except BROKER_ERRORS as exc:
                log.warning("rabbitmq unavailable (%r); reconnecting in %.1fs", exc, backoff)
                if self.rabbit is not None:
                    await self.rabbit.close()
                await _sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, 5.0)

    async def _consume(self, rabbit: RabbitChannel, channel: NotificationChannel) -> None:
        inbox = await rabbit.consume(self.topology.work_queue(channel))
        handler = self.handlers[channel]
        while True:
            batch = await rabbit.next_batch(inbox, self.settings.rabbit.prefetch, BATCH_WAIT_S)
            await handler(batch)
            self.processed += len(batch)

    def _rabbit(self) -> RabbitChannel:
        if self.rabbit is None:
            raise RabbitUnavailableError("not connected")
        return self.rabbit

    async def dead_letter(self, delivery: Delivery, reason: str) -> None:
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
        await self._rabbit().publish("", self.topology.dlq, delivery.body, props)

    async def _decode(self, batch: list[Delivery]) -> list[tuple[Delivery, DomainEvent]]:
        decoded = []
        for delivery in batch:
            try:
                decoded.append((delivery, decode_notification_event(delivery.body)))
            except PoisonEventError as exc:
                await self.dead_letter(delivery, str(exc))
        return decoded

    async def _requeue_later(self, batch: Sequence[Delivery], exc: BaseException) -> None:
        log.warning("transient failure (%r); requeueing %d messages", exc, len(batch))
        await asyncio.sleep(RETRY_BACKOFF_S)
        for delivery in batch:
            self._rabbit().requeue(delivery.delivery_tag)

    # --- in-app -----------------------------------------------------------------------------

    async def handle_in_app(self, batch: list[Delivery]) -> None:
        """One transaction per batch; per message only when the batch as a whole fails."""
        decoded = await self._decode(batch)
        events = list({e.event_id: e for _, e in decoded}.values())
        created: list[LiveNotification] = []
        try:
            if events:
                async with transaction(self.session_factory) as session:
                    created = await deliver_in_app(session, events)
        except Exception as exc:
            if is_transient(exc):
                kept = {d.delivery_tag for d, _ in decoded}
                for poison in (d for d in batch if d.delivery_tag not in kept):
                    self._rabbit().ack(poison.delivery_tag)
                await self._requeue_later([d for d, _ in decoded], exc)
                return
            log.warning("in-app batch failed (%r); retrying message by message", exc)
            created = await self._in_app_one_by_one(decoded)
        await self._push_live(created)
        self._rabbit().ack(batch[-1].delivery_tag, multiple=True)

    async def _in_app_one_by_one(
        self, decoded: list[tuple[Delivery, DomainEvent]]
    ) -> list[LiveNotification]:
        created: list[LiveNotification] = []
        for delivery, event in decoded:
            try:
                async with transaction(self.session_factory) as session:
                    created += await deliver_in_app(session, [event])
            except Exception as exc:
                if is_transient(exc):
                    raise
                await self.dead_letter(delivery, f"in-app delivery failed: {exc!r}")
        return created

    async def _push_live(self, created: list[LiveNotification]) -> None:
        try:
            await publish_live(self.redis, created)
        except (RedisError, OSError) as exc:
            # Committed already; clients still see them through GET /notifications.
            log.warning("live push of %d notifications failed: %r", len(created), exc)

    # --- email ------------------------------------------------------------------------------

    async def handle_email(self, batch: list[Delivery]) -> None:
        for delivery, event in await self._decode_keep_tags(batch):
            if event is None:
                self._rabbit().ack(delivery.delivery_tag)
                continue
            try:
                await deliver_email(self.session_factory, self.settings.smtp, event)
            except Exception as exc:
                if not is_transient(exc):
                    await self.dead_letter(delivery, f"email delivery failed: {exc!r}")
                    self._rabbit().ack(delivery.delivery_tag)
                    continue
                await self._requeue_later([delivery], exc)
                continue
            self._rabbit().ack(delivery.delivery_tag)

    async def _decode_keep_tags(
        self, batch: list[Delivery]
    ) -> list[tuple[Delivery, DomainEvent | None]]:
        out: list[tuple[Delivery, DomainEvent | None]] = []
        for delivery in batch:
            try:
                out.append((delivery, decode_notification_event(delivery.body)))
            except PoisonEventError as exc:
                await self.dead_letter(delivery, str(exc))
                out.append((delivery, None))
        return out

    # --- webhooks ---------------------------------------------------------------------------

    async def handle_webhook(self, batch: list[Delivery]) -> None:
        await asyncio.gather(*(self._webhook_message(d) for d in batch))

    async def _webhook_message(self, delivery: Delivery) -> None:
        try:
            retry_of = delivery.headers.get(DELIVERY_ID_HEADER)
            if retry_of is not None:
                async with self.session_factory() as session:
                    replayed = bool(delivery.headers.get("x-replayed-from-dlq"))
                    targets = await pending_targets(
                        session, [_uuid(retry_of)], include_dead=replayed
                    )
                event_type = delivery.properties.type or ""
            else:
                try:
                    event = decode_notification_event(delivery.body)
                except PoisonEventError as exc:
                    await self.dead_letter(delivery, str(exc))
                    self._rabbit().ack(delivery.delivery_tag)
                    return
                async with transaction(self.session_factory) as session:
                    targets = await plan_deliveries(session, event)
                event_type = event.type
            await asyncio.gather(*(self._attempt(delivery, t, event_type) for t in targets))
        except BROKER_ERRORS:
            raise  # the channel is gone: reconnect, the message comes back
        except Exception as exc:
            if is_transient(exc):
                await self._requeue_later([delivery], exc)
                return
            await self.dead_letter(delivery, f"webhook fan-out failed: {exc!r}")
        self._rabbit().ack(delivery.delivery_tag)

    async def _attempt(self, delivery: Delivery, target: DeliveryTarget, event_type: str) -> None:
        rabbit_settings = self.settings.rabbit
        result = await attempt_delivery(
            self.http,
            target,
            event_type,
            delivery.body,
            timeout_s=rabbit_settings.webhook_timeout_s,
        )
        async with transaction(self.session_factory) as session:
            status, attempts = await record_attempt(
                session, target, result, rabbit_settings.webhook_max_attempts
            )
        delivery_id = str(target.delivery_id)
        if status is DeliveryStatus.RETRYING:
            props = BasicProperties(
                delivery_mode=2,
                content_type="application/json",
                message_id=delivery.properties.message_id,
                type=event_type,
                headers={DELIVERY_ID_HEADER: delivery_id, "x-attempts": attempts},
            )
            await self._rabbit().publish(
                "", self.topology.delay_queue(attempts), delivery.body, props
            )
        elif status is DeliveryStatus.DEAD:
            copy = Delivery(
                delivery.delivery_tag,
                delivery.routing_key,
                BasicProperties(
                    content_type="application/json",
                    message_id=delivery.properties.message_id,
                    type=event_type,
                    headers={DELIVERY_ID_HEADER: delivery_id},
                ),
                delivery.body,
                delivery.redelivered,
                delivery.queue,
            )
            await self.dead_letter(
                copy, f"webhook delivery {delivery_id} failed {attempts} times: {result.error}"
            )


def _uuid(value: object) -> uuid.UUID:
    return uuid.UUID(str(value.decode() if isinstance(value, bytes) else value))


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def run_worker(
    settings: Settings, channels: Sequence[NotificationChannel], stop: asyncio.Event
) -> None:
    engine = create_engine(settings.db)
    redis = Redis.from_url(settings.redis.url)
    async with httpx.AsyncClient(follow_redirects=False) as http:
        worker = NotificationWorker(settings, create_session_factory(engine), redis, http, channels)
        try:
            await worker.run(stop)
        finally:
            await redis.aclose()
            await engine.dispose()
