"""The outbox relay: unsent outbox rows -> RabbitMQ topic exchange and the Kafka events topic.

Per batch, in one transaction: claim rows (FOR UPDATE SKIP LOCKED, id order), publish each to
RabbitMQ as a persistent message with all publisher confirms in flight at once, produce each to
Kafka (acks=all), wait for every confirm and ack, then mark the rows sent and commit. A failure
anywhere rolls back, so rows are only ever marked sent after the brokers hold them; a crash after
the publish and before the commit resends the batch (workers dedupe by event id).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pika import BasicProperties
from pika.exceptions import AMQPError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.db import create_engine, create_session_factory, transaction
from taskstream.kafka import new_producer
from taskstream.observability import telemetry
from taskstream.observability.metrics import (
    OUTBOX_BACKLOG,
    OUTBOX_OLDEST_AGE,
    RELAY_CONFIRM_LATENCY,
    RELAY_CONFIRMED,
    RELAY_FAILURES,
    RELAY_PUBLISHED,
)
from taskstream.observability.metrics_listener import process_listener
from taskstream.observability.tracing import (
    LEGACY_TRACE_ID_HEADER,
    TRACEPARENT_HEADER,
    TraceContext,
    log_fields,
    trace_headers,
)
from taskstream.outbox.repository import OutboxRepository, PendingEvent
from taskstream.runtime import sleep_or_stop
from taskstream.settings import Settings
from taskstream.tasks.overdue import sweep_overdue

from .kafka_batches import RELAY_MAX_BATCH_BYTES, produce_records
from .rabbit import PublishNackedError, RabbitChannel, RabbitUnavailableError
from .topology import Topology, declare_topology

log = logging.getLogger("taskstream.relay")

BROKER_ERRORS = (
    RabbitUnavailableError,
    PublishNackedError,
    AMQPError,
    KafkaError,
    OSError,
    TimeoutError,
)
DB_ERRORS = (OperationalError, DBAPIError)


@dataclass(slots=True)
class RelayOptions:
    batch_size: int = 2000
    idle_poll_s: float = 0.05
    sweep_interval_s: float = 30.0
    confirm_timeout_s: float = 30.0
    # Batches in flight at once: while one is claimed and one committed, the broker still has
    # two to confirm (quorum-queue confirms take ~0.2 s per few thousand messages here).
    pipeline: int = 4
    max_backoff_s: float = 5.0


@dataclass(slots=True)
class InFlightBatch:
    """Claimed rows (locked by ``session``'s open transaction), published, awaiting acks."""

    session: AsyncSession
    rows: list[PendingEvent]
    confirmed: asyncio.Future[Any]
    published_at: float = field(default_factory=time.perf_counter)


async def _abandon(session: AsyncSession) -> None:
    """Roll back (the rows stay unsent and are claimed again) and release the connection."""
    try:
        await session.rollback()
    finally:
        await session.close()


def event_properties(row: PendingEvent, trace: TraceContext | None = None) -> BasicProperties:
    """AMQP properties of a relayed event (the benchmark's fan-out ceiling uses them too);
    ``trace`` (default: the row's own) goes in ``traceparent`` and the legacy ``x-trace-id``."""
    trace = trace or TraceContext.parse(row.trace_id)
    headers = (
        {TRACEPARENT_HEADER: trace.traceparent, LEGACY_TRACE_ID_HEADER: trace.trace_id}
        if trace is not None
        else {}
    )
    return BasicProperties(
        delivery_mode=2,  # persistent: survives a broker restart once confirmed
        content_type="application/json",
        message_id=str(row.event_id),
        type=row.event_type,
        timestamp=int(row.created_at.timestamp()),
        headers=headers,  # type and version are in the body
    )


def _publish_span(row: PendingEvent) -> TraceContext | None:
    """The trace context a relayed event hands on: with an exporter, a span of this relay
    under the row's context; without one, the row's context as it is."""
    trace = TraceContext.parse(row.trace_id)
    if not telemetry.enabled():
        return trace
    return telemetry.record_span(
        f"relay {row.event_type}",
        trace,
        kind="producer",
        attributes={"taskstream.event_id": str(row.event_id)},
    )


class OutboxRelay:
    def __init__(
        self,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        options: RelayOptions,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.options = options
        self.topology = Topology.from_settings(settings.rabbit)
        self.rabbit: RabbitChannel | None = None
        self.producer: AIOKafkaProducer | None = None
        self.relayed = 0
        self.failing: set[str] = set()  # dependencies whose error ended the last round
        self._kafka_submit = asyncio.Lock()

    async def _connect(self) -> None:
        if self.rabbit is None or self.rabbit.closed:
            rabbit = await RabbitChannel(self.settings.rabbit.url, confirms=True).open()
            await declare_topology(rabbit, self.topology)
            self.rabbit = rabbit
            log.info("relay connected to rabbitmq exchange %s", self.topology.exchange)
        if self.producer is None:
            kafka = self.settings.kafka
            # acks=all (new_producer): an event is relayed once every in-sync replica has it
            producer = new_producer(
                kafka,
                linger_ms=kafka.linger_ms,
                max_batch_size=RELAY_MAX_BATCH_BYTES,  # a relay batch per partition in one go
                request_timeout_ms=int(kafka.publish_timeout_s * 1000),
            )
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self.producer = producer

    async def _start_batch(self) -> InFlightBatch | None:
        """Claim a batch in a new transaction and publish it; confirms are still outstanding."""
        await self._connect()
        assert self.rabbit is not None
        assert self.producer is not None
        exchange = self.topology.exchange
        session = self.session_factory()
        try:
            await session.begin()
            rows = await OutboxRepository.from_session(session).claim_unsent(
                self.options.batch_size
            )
            if not rows:
                await session.rollback()
                await session.close()
                return None
            published = self.rabbit.publish_many(
                exchange,
                [
                    (row.event_type, row.payload, event_properties(row, _publish_span(row)))
                    for row in rows
                ],
            )
        except BaseException:
            await _abandon(session)
            raise
        # Kafka submission runs as its own task: handing over a batch can wait for the previous
        # produce request (aiokafka keeps one in flight per broker), and the next batch's claim
        # and RabbitMQ publish should not wait for that.
        produced = asyncio.ensure_future(self._produce(rows))
        confirmed = asyncio.ensure_future(
            asyncio.wait_for(asyncio.gather(published, produced), self.options.confirm_timeout_s)
        )
        RELAY_PUBLISHED.inc(len(rows))
        return InFlightBatch(session, rows, confirmed)

    async def _produce(self, rows: list[PendingEvent]) -> None:
        """Produce the rows to Kafka (one record batch per partition); returns once acked."""
        assert self.producer is not None
        records = [
            (
                str(row.aggregate_id).encode(),  # the task id for task events: per-task order
                row.payload,  # the stored envelope bytes, sent as they are
                [*trace_headers(row.trace_id), ("x-event-type", row.event_type.encode())],
            )
            for row in rows
        ]
        # The lock hands batches to the producer in claim order, so a partition (a task) gets
        # batch N's events before batch N+1's while several batches are in flight.
        async with self._kafka_submit:
            acks = await produce_records(
                self.producer, self.settings.kafka.task_events_topic, records
            )
        await asyncio.gather(*acks)

    async def _finish_batch(self, batch: InFlightBatch) -> int:
        """Wait for every confirm and ack of the batch, then mark its rows sent and commit."""
        try:
            await batch.confirmed
            RELAY_CONFIRM_LATENCY.observe(time.perf_counter() - batch.published_at)
            await OutboxRepository.from_session(batch.session).mark_sent(
                [row.id for row in batch.rows]
            )
            await batch.session.commit()
        except BaseException:
            await _abandon(batch.session)
            raise
        await batch.session.close()
        if log.isEnabledFor(logging.DEBUG):
            for row in batch.rows:
                log.debug(
                    "relayed event %s (%s)",
                    row.event_id,
                    row.event_type,
                    extra=log_fields(TraceContext.parse(row.trace_id)),
                )
        self.relayed += len(batch.rows)
        RELAY_CONFIRMED.inc(len(batch.rows))
        return len(batch.rows)

    async def relay_batch(self) -> int:
        """Relay one batch; returns how many rows were marked sent (0: nothing to do)."""
        batch = await self._start_batch()
        return 0 if batch is None else await self._finish_batch(batch)

    async def drain(self, max_batches: int = 50) -> int:
        """Relay back to back with up to ``options.pipeline`` batches in flight.

        While batch N waits for its confirms, batch N+1 is claimed (SKIP LOCKED passes over
        N's locked rows) and published, and each batch is marked sent and committed by its
        own task as soon as its acks are in, so the claim of one batch, the broker acks of
        another and the commit of a third overlap (each has its own connection).
        Publish order is claim order; only a failure can resend N after N+1.
        Returns after ``max_batches`` (so the sweep gets its turn) or when nothing is left.
        """
        in_flight: dict[asyncio.Task[int], InFlightBatch] = {}
        relayed = started = 0
        more = True
        try:
            while True:
                if more and started < max_batches and len(in_flight) < self.options.pipeline:
                    batch = await self._start_batch()
                    if batch is not None:
                        in_flight[asyncio.ensure_future(self._finish_batch(batch))] = batch
                        started += 1
                        more = len(batch.rows) == self.options.batch_size
                        continue
                    more = False
                if not in_flight:
                    return relayed
                done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    del in_flight[task]
                    relayed += task.result()  # a failed batch raises here: stop and retry
        except BaseException:
            for task, batch in in_flight.items():
                task.cancel()
                batch.confirmed.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
            for batch in in_flight.values():  # a task cancelled before it ran did not
                await _abandon(batch.session)
            raise

    async def sweep(self) -> int:
        async with transaction(self.session_factory) as session:
            return await sweep_overdue(session)

    async def close(self) -> None:
        if self.rabbit is not None:
            await self.rabbit.close()
            self.rabbit = None
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None

    async def _drop_rabbit(self) -> None:
        if self.rabbit is not None:
            try:
                await self.rabbit.close()
            except Exception:
                log.debug("closing a broken rabbit channel failed", exc_info=True)
            self.rabbit = None

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set, reconnecting with backoff through broker outages."""
        backoff = 0.1
        next_sweep = 0.0
        while not stop.is_set():
            try:
                if self.options.sweep_interval_s > 0 and time.monotonic() >= next_sweep:
                    swept = await self.sweep()
                    if swept:
                        log.info("overdue sweep marked %d tasks", swept)
                    next_sweep = time.monotonic() + self.options.sweep_interval_s
                relayed = await self.drain()
                self.failing.clear()
                backoff = 0.1
                if relayed < self.options.batch_size:
                    await sleep_or_stop(stop, self.options.idle_poll_s)
            except BROKER_ERRORS + DB_ERRORS as exc:
                RELAY_FAILURES.inc()
                self.failing = {_dependency_of(exc)}
                log.warning("relay batch failed (%r); retrying in %.1fs", exc, backoff)
                await self._drop_rabbit()
                await sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, self.options.max_backoff_s)

    def readiness(self) -> dict[str, bool]:
        """Connected to both brokers and the last round not failed (no I/O)."""
        return {
            "rabbitmq": self.rabbit is not None and not self.rabbit.closed,
            "kafka": self.producer is not None and "kafka" not in self.failing,
            "postgres": "postgres" not in self.failing,
        }

    async def refresh_backlog(self) -> None:
        """The outbox backlog gauges, read on scrape."""
        async with self.session_factory() as session:
            count, age = await OutboxRepository.from_session(session).unsent_summary()
        OUTBOX_BACKLOG.set(count)
        OUTBOX_OLDEST_AGE.set(age)


def _dependency_of(exc: BaseException) -> str:
    if isinstance(exc, DB_ERRORS):
        return "postgres"
    if isinstance(exc, KafkaError):
        return "kafka"
    return "rabbitmq"


async def run_relay(settings: Settings, options: RelayOptions, stop: asyncio.Event) -> None:
    engine = create_engine(settings.db)
    relay = OutboxRelay(settings, create_session_factory(engine), options)
    listen = settings.metrics
    try:
        async with process_listener(
            listen.host, listen.relay_port, relay.readiness, relay.refresh_backlog
        ):
            await relay.run(stop)
    finally:
        await relay.close()
        await engine.dispose()


async def sweep_once(settings: Settings) -> int:
    engine = create_engine(settings.db)
    try:
        async with transaction(create_session_factory(engine)) as session:
            return await sweep_overdue(session)
    finally:
        await engine.dispose()
