"""`taskstream work`: consume the notification queues and call the notification services.

Thin shell: decode, call ``taskstream.notifications``, ack only after the effect is committed
(manual acks, prefetch from settings). Undecodable messages go to the DLQ with a reason and the
worker carries on; transient failures (database, SMTP) requeue after a backoff.

One consumer, one channel: each queue is consumed on its own connection and channel, so a
delivery tag is only ever acked by the consumer it was delivered to, and a channel error (or a
lost connection) stops that consumer alone. It is counted, logged once per episode, shown in the
worker's heartbeat (``taskstream.infra.worker_status``, read by ``GET /health``), and
the consumer reopens its channel with backoff; its unacked messages return to the queue and the
deterministic notification ids make the redelivery a no-op for what was already done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.db import create_engine, create_session_factory, transaction
from taskstream.enums import NotificationChannel
from taskstream.infra.worker_status import (
    HEARTBEAT_INTERVAL_S,
    ConsumerStatus,
    WorkerStatus,
    clear_worker_status,
    write_worker_status,
)
from taskstream.messages import DomainEvent
from taskstream.notifications.email import Mailer, deliver_email
from taskstream.notifications.live import publish_live
from taskstream.notifications.schemas import LiveNotification
from taskstream.notifications.service import deliver_in_app
from taskstream.notifications.webhook_targets import webhook_client
from taskstream.observability.metrics import EMAIL_SENDS, QUEUE_MESSAGES, WORKER_DELIVERIES
from taskstream.observability.metrics_listener import process_listener
from taskstream.runtime import sleep_or_stop
from taskstream.settings import Settings

from .handling import (
    BROKER_ERRORS,
    dead_letter,
    decode_or_dead_letter,
    is_transient,
    requeue_later,
)
from .rabbit import Delivery, RabbitChannel
from .topology import Topology, declare_topology
from .webhook_dispatch import WebhookDispatcher

log = logging.getLogger("taskstream.worker")

BATCH_WAIT_S = 0.01


@dataclass
class ConsumerHealth:
    """One consumer's state for the heartbeat; logs a channel failure once per episode."""

    channel: NotificationChannel
    queue: str
    state: str = "starting"
    channel_errors: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    processed: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def consuming(self) -> None:
        if self.state == "recovering":
            log.info(
                "%s consumer recovered (channel errors so far: %d)",
                self.channel.value,
                self.channel_errors,
            )
        self.state = "consuming"
        self.changed.set()

    def failed(self, exc: BaseException) -> None:
        self.channel_errors += 1
        self.last_error = repr(exc)[:500]
        self.last_error_at = time.time()
        if self.state != "recovering":
            log.warning("%s consumer lost its channel (%r); reopening", self.channel.value, exc)
        else:  # still down: counted, not logged again
            log.debug("%s consumer still recovering: %r", self.channel.value, exc)
        self.state = "recovering"
        self.changed.set()

    def status(self) -> ConsumerStatus:
        return ConsumerStatus(
            queue=self.queue,
            state=self.state,
            channel_errors=self.channel_errors,
            last_error=self.last_error,
            last_error_at=self.last_error_at,
            processed=self.processed,
        )


class NotificationWorker:
    def __init__(
        self,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        redis: Redis,
        http: httpx.AsyncClient,
        *,
        mailer: Mailer,
        channels: Sequence[NotificationChannel],
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.redis = redis
        self.mailer = mailer
        self.topology = Topology.from_settings(settings.rabbit)
        self.webhooks = WebhookDispatcher(settings, session_factory, http, self.topology)
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.started_at = time.time()
        self.consumers = {
            c: ConsumerHealth(c, self.topology.work_queue(c)) for c in dict.fromkeys(channels)
        }
        self._stats: RabbitChannel | None = None  # kept open for queue depths on scrape

    # --- plumbing ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume every channel on its own channel until ``stop``; each recovers on its own."""
        tasks = [
            asyncio.create_task(self._consume_forever(h, stop)) for h in self.consumers.values()
        ]
        tasks.append(asyncio.create_task(self._heartbeat(stop)))
        log.info(
            "worker %s consuming %s", self.worker_id, ", ".join(c.value for c in self.consumers)
        )
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._stats is not None:
                await self._stats.close()
            with contextlib.suppress(RedisError, OSError):
                await clear_worker_status(
                    self.redis, self.settings.rabbit.events_exchange, self.worker_id
                )

    async def _consume_forever(self, health: ConsumerHealth, stop: asyncio.Event) -> None:
        backoff = 0.2
        while not stop.is_set():
            rabbit = RabbitChannel(
                self.settings.rabbit.url,
                confirms=True,  # dead letters and webhook retries are published on it, confirmed
                prefetch=self.settings.rabbit.prefetch,
                connection_name=f"taskstream-worker {self.worker_id} {health.channel.value}",
            )
            try:
                await rabbit.open()
                await declare_topology(rabbit, self.topology)
                inbox = await rabbit.consume(health.queue)
                health.consuming()
                backoff = 0.2
                await self._consume(rabbit, inbox, health)
            except asyncio.CancelledError:
                raise
            except BROKER_ERRORS as exc:
                health.failed(exc)
            except Exception as exc:  # a bug must not take the other consumers down
                log.exception("%s consumer failed; reopening its channel", health.channel.value)
                health.failed(exc)
            finally:
                await rabbit.close()
            await sleep_or_stop(stop, backoff)
            backoff = min(backoff * 2, 5.0)

    async def _consume(
        self, rabbit: RabbitChannel, inbox: asyncio.Queue[Any], health: ConsumerHealth
    ) -> None:
        deliveries = WORKER_DELIVERIES.labels(health.channel.value)

        def count(n: int) -> None:
            health.processed += n
            deliveries.inc(n)

        if health.channel is NotificationChannel.WEBHOOK:
            await self.webhooks.consume(rabbit, inbox, count)
            return
        handler = (
            self.handle_in_app
            if health.channel is NotificationChannel.IN_APP
            else self.handle_email
        )
        while True:
            batch = await rabbit.next_batch(inbox, self.settings.rabbit.prefetch, BATCH_WAIT_S)
            await handler(rabbit, batch)
            count(len(batch))

    def readiness(self) -> dict[str, bool]:
        """Every consumer holds its RabbitMQ channel (no I/O)."""
        return {"rabbitmq": all(h.state == "consuming" for h in self.consumers.values())}

    async def refresh_queue_depths(self) -> None:
        """Messages waiting in each work queue and the dead-letter queue, read with passive
        declares on one channel kept open, so a scrape opens no connection."""
        if self._stats is None or self._stats.closed:
            self._stats = await RabbitChannel(
                self.settings.rabbit.url,
                connection_name=f"taskstream-worker {self.worker_id} stats",
            ).open()
        queues = [(c.value, self.topology.work_queue(c)) for c in NotificationChannel]
        for name, queue in [*queues, ("dlq", self.topology.dlq)]:
            frame = await self._stats.rpc(
                self._stats.channel.queue_declare, queue=queue, passive=True
            )
            QUEUE_MESSAGES.labels(name).set(frame.method.message_count)

    def status(self) -> WorkerStatus:
        consumers = {h.channel.value: h.status() for h in self.consumers.values()}
        if NotificationChannel.WEBHOOK.value in consumers:
            consumers[NotificationChannel.WEBHOOK.value].deferred = self.webhooks.deferred
        return WorkerStatus(
            worker_id=self.worker_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=self.started_at,
            updated_at=time.time(),
            consumers=consumers,
        )

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        """Write the status every interval, and at once when a consumer changes state."""
        failing = False
        exchange = self.settings.rabbit.events_exchange
        while not stop.is_set():
            for health in self.consumers.values():
                health.changed.clear()
            try:
                await write_worker_status(self.redis, exchange, self.status())
                if failing:
                    log.info("worker heartbeat to Redis restored")
                failing = False
            except (RedisError, OSError) as exc:
                if not failing:  # once per outage: the heartbeat is informative only
                    log.warning("worker heartbeat to Redis failed: %r", exc)
                failing = True
            waits = [asyncio.ensure_future(h.changed.wait()) for h in self.consumers.values()]
            waits.append(asyncio.ensure_future(stop.wait()))
            await asyncio.wait(
                waits, timeout=HEARTBEAT_INTERVAL_S, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in waits:
                waiter.cancel()

    # --- in-app -----------------------------------------------------------------------------

    async def handle_in_app(self, rabbit: RabbitChannel, batch: list[Delivery]) -> None:
        """One transaction per batch; per message only when the batch as a whole fails."""
        decoded = [
            (d, e) for d, e in await decode_or_dead_letter(rabbit, self.topology, batch) if e
        ]
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
                    rabbit.ack(poison.delivery_tag)
                await requeue_later(
                    rabbit, [d for d, _ in decoded], exc, NotificationChannel.IN_APP
                )
                return
            log.warning("in-app batch failed (%r); retrying message by message", exc)
            created = await self._in_app_one_by_one(rabbit, decoded)
        await self._push_live(created)
        # `multiple` is safe here, and only here: this channel carries this consumer alone and
        # every earlier delivery on it was settled by an earlier batch.
        rabbit.ack(batch[-1].delivery_tag, multiple=True)

    async def _in_app_one_by_one(
        self, rabbit: RabbitChannel, decoded: list[tuple[Delivery, DomainEvent]]
    ) -> list[LiveNotification]:
        created: list[LiveNotification] = []
        for delivery, event in decoded:
            try:
                async with transaction(self.session_factory) as session:
                    created += await deliver_in_app(session, [event])
            except Exception as exc:
                if is_transient(exc):
                    raise
                reason = f"in-app delivery failed: {exc!r}"
                await dead_letter(rabbit, self.topology, delivery, reason)
        return created

    async def _push_live(self, created: list[LiveNotification]) -> None:
        try:
            await publish_live(self.redis, created)
        except (RedisError, OSError) as exc:
            # Committed already; clients still see them through GET /notifications.
            log.warning("live push of %d notifications failed: %r", len(created), exc)

    # --- email ------------------------------------------------------------------------------

    async def handle_email(self, rabbit: RabbitChannel, batch: list[Delivery]) -> None:
        """One message at a time over the mailer's one SMTP connection; ack each after commit."""
        for delivery, event in await decode_or_dead_letter(rabbit, self.topology, batch):
            if event is None:
                rabbit.ack(delivery.delivery_tag)
                continue
            try:
                sent = await deliver_email(self.session_factory, self.mailer, event)
            except Exception as exc:
                if not is_transient(exc):
                    EMAIL_SENDS.labels("failed").inc()
                    reason = f"email delivery failed: {exc!r}"
                    await dead_letter(rabbit, self.topology, delivery, reason)
                    rabbit.ack(delivery.delivery_tag)
                    continue
                EMAIL_SENDS.labels("transient_failure").inc()
                await requeue_later(rabbit, [delivery], exc, NotificationChannel.EMAIL)
                continue
            EMAIL_SENDS.labels("sent").inc(sent)
            rabbit.ack(delivery.delivery_tag)


async def run_worker(
    settings: Settings, channels: Sequence[NotificationChannel], stop: asyncio.Event
) -> None:
    engine = create_engine(settings.db)
    redis = Redis.from_url(settings.redis.url)
    mailer = Mailer(settings.smtp, settings.auth)
    # Per-attempt bounds come from settings.webhooks (attempt_delivery); the pool is sized to
    # the overall in-flight bound so an attempt never waits for a connection slot.
    pool = httpx.Limits(
        max_connections=settings.webhooks.max_in_flight,
        max_keepalive_connections=settings.webhooks.max_in_flight,
    )
    async with webhook_client(settings, pool) as http:
        worker = NotificationWorker(
            settings, create_session_factory(engine), redis, http, mailer=mailer, channels=channels
        )
        listen = settings.metrics
        try:
            async with process_listener(
                listen.host, listen.work_port, worker.readiness, worker.refresh_queue_depths
            ):
                await worker.run(stop)
        finally:
            await mailer.close()
            await redis.aclose()
            await engine.dispose()
