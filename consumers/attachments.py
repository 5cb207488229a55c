"""The attachment processor: one member of the consumer group that runs `attachment.uploaded`
commands through the pipeline (``taskstream.attachments.processing``).

Delivery semantics, stated once and enforced here:

* offsets are committed explicitly (auto-commit off), per partition, only after the
  attachment reached a final state in PostgreSQL (or was found gone), and only while this
  member still owns the partition; a crash anywhere before that commit means redelivery, and
  processing resumes from the row's state (idempotent per attachment and stage);
* clamd down, the object store unavailable, or the database unavailable: the same attachment
  is retried with backoff and jitter, holding its partition; nothing later on that partition
  is processed or committed past it (the attachment waits in its stage, e.g. ``scanning``);
* an error of the attachment itself (anything else, three times in a row) ends it ``failed``
  with the reason, so one bad file never blocks its partition;
* an undecodable record is copied to the dead-letter topic (``<topic>.dlq``, the original
  key, value and headers plus ``x-error`` and where it came from, like the task-command
  applier's) and committed past only once the broker acknowledged the copy (acks=all), so
  nothing is dropped silently; the broker unavailable meanwhile holds the partition.

Partitions are processed concurrently (one task per partition of a fetched batch), records of
a partition in order. Scale by starting more processes, up to the topic's partition count.
Processing a large file or waiting for clamd can outlast Kafka's default poll interval, so
``max_poll_interval_ms`` is raised: heartbeats keep the membership meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from typing import TypeAlias

import msgspec
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata
from redis.asyncio import Redis

from taskstream.attachments.commands import decode_uploaded
from taskstream.attachments.processing import AttachmentProcessor
from taskstream.attachments.scanner import ClamdScanner, ScannerUnavailable
from taskstream.attachments.storage import StorageUnavailable, open_store
from taskstream.db import (
    create_engine,
    create_session_factory,
    describe_error,
    is_availability_error,
)
from taskstream.enums import AttachmentState
from taskstream.infra.dead_letters import dead_letter_headers
from taskstream.infra.topics import ensure_topics
from taskstream.kafka import new_producer
from taskstream.observability.metrics import (
    ATTACHMENT_COMMANDS_DEAD_LETTERED,
    ATTACHMENTS_PROCESSED,
)
from taskstream.observability.metrics_listener import process_listener
from taskstream.settings import Settings

log = logging.getLogger("taskstream.consumers.attachments")

Record: TypeAlias = ConsumerRecord[bytes, bytes]
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)
# attempts of an attachment that fails with its own error before it is marked failed
MAX_ATTEMPTS = 3
MAX_POLL_INTERVAL_MS = 3_600_000
TRANSIENT = (ScannerUnavailable, StorageUnavailable)


class StopRequestedError(Exception):
    """Shutting down while an attachment is not final: leave its offset uncommitted."""


class _WaitOnRevoke(ConsumerRebalanceListener):
    def __init__(self, consumer: AttachmentConsumer) -> None:
        self.owner = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.owner.generation += 1
        if revoked:
            try:
                await asyncio.wait_for(self.owner.idle.wait(), 30)
            except TimeoutError:
                log.warning("attachments still in flight at revocation; not committed")

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions assigned: %s", sorted(tp.partition for tp in assigned))


class AttachmentConsumer:
    def __init__(
        self, settings: Settings, processor: AttachmentProcessor, stop: asyncio.Event
    ) -> None:
        self.settings = settings
        self.kafka = settings.kafka
        self.processor = processor
        self.stop = stop
        self.idle = asyncio.Event()
        self.idle.set()
        self.generation = 0
        self.joined = False
        # the dependency the attachment in hand waits for (readiness), None when none
        self.waiting_for: str | None = None
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.kafka.bootstrap_servers,
            group_id=self.kafka.attachments_consumer_group,  # offsets live in the broker
            client_id="taskstream-attachments",
            enable_auto_commit=False,  # explicit offsets after the attachment is final
            auto_offset_reset="earliest",  # a new group must not skip accepted uploads
            session_timeout_ms=self.kafka.session_timeout_ms,
            heartbeat_interval_ms=max(300, self.kafka.session_timeout_ms // 3),
            max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
            fetch_max_wait_ms=100,
        )
        # acks=all (new_producer): a dead letter must be durable before we commit past it
        self.producer = new_producer(self.kafka, client_id="taskstream-attachments-dlq")

    async def run(self) -> None:
        topic = self.kafka.attachment_commands_topic
        await ensure_topics(self.kafka, [topic, self.kafka.attachment_commands_dlq_topic])
        await self.producer.start()
        self.consumer.subscribe([topic], listener=_WaitOnRevoke(self))
        try:
            await self.consumer.start()
        except BaseException:
            await self.producer.stop()
            raise
        self.joined = True
        log.info(
            "processing attachments from %s as %s", topic, self.kafka.attachments_consumer_group
        )
        try:
            while not self.stop.is_set():
                batches = await self.consumer.getmany(timeout_ms=500, max_records=64)
                if not batches:
                    continue
                self.idle.clear()
                try:
                    generation = self.generation
                    await asyncio.gather(
                        *(
                            self._partition(tp, records, generation)
                            for tp, records in batches.items()
                        )
                    )
                except StopRequestedError:
                    return
                finally:
                    self.idle.set()
        finally:
            await self.consumer.stop()
            await self.producer.stop()

    async def _partition(
        self, tp: TopicPartition, records: Sequence[Record], generation: int
    ) -> None:
        for record in records:
            if generation != self.generation:
                return  # revoked meanwhile: the new owner starts from the committed offset
            await self._handle(record)
            await self._commit(tp, record.offset + 1)

    async def _commit(self, tp: TopicPartition, offset: int) -> None:
        if tp not in self.consumer.assignment():
            return
        try:
            await self.consumer.commit({tp: OffsetAndMetadata(offset, "")})
        except (CommitFailedError, IllegalStateError, KafkaError) as error:
            # a rebalance took the partition: the attachment is final, a redelivery is a no-op
            log.warning("commit of %s@%d failed: %r", tp, offset, error)

    async def _handle(self, record: Record) -> None:
        try:
            command = decode_uploaded(record.value or b"")
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as error:
            await self._dead_letter(record, f"{type(error).__name__}: {error}")
            return
        failures = 0
        retry = 0
        while True:
            try:
                final = await self.processor.process(command.attachment_id)
                self.waiting_for = None
                ATTACHMENTS_PROCESSED.labels(final.value if final else "gone").inc()
                return
            except TRANSIENT as error:
                self.waiting_for = "clamd" if isinstance(error, ScannerUnavailable) else "storage"
                log.warning("attachment %s waits: %r", command.attachment_id, error)
            except Exception as error:
                if not is_availability_error(error):
                    failures += 1
                    log.exception(
                        "attachment %s failed (attempt %d)", command.attachment_id, failures
                    )
                    if failures >= MAX_ATTEMPTS:
                        await self.processor.fail(command.attachment_id, describe_error(error))
                        ATTACHMENTS_PROCESSED.labels(AttachmentState.FAILED.value).inc()
                        return
                else:
                    self.waiting_for = "postgres"
                    log.warning(
                        "database unavailable for %s: %s",
                        command.attachment_id,
                        describe_error(error),
                    )
            await self._sleep(BACKOFF_S[min(retry, len(BACKOFF_S) - 1)])
            retry += 1

    async def _dead_letter(self, record: Record, error: str) -> None:
        """Copy ``record`` to the dead-letter topic, retrying until the broker acknowledged
        it (the caller commits past it only then)."""
        retry = 0
        while True:
            try:
                sent = await self.producer.send(
                    self.kafka.attachment_commands_dlq_topic,
                    value=record.value,
                    key=record.key,
                    headers=dead_letter_headers(
                        record.headers, error, record.topic, record.partition, record.offset
                    ),
                )
                await sent
                self.waiting_for = None
                break
            except KafkaError as failure:
                self.waiting_for = "kafka"
                log.warning(
                    "dead letter of %s@%d not sent: %r", record.topic, record.offset, failure
                )
            await self._sleep(BACKOFF_S[min(retry, len(BACKOFF_S) - 1)])
            retry += 1
        log.error(
            "dead-lettered undecodable attachment command %s[%d]@%d: %s",
            record.topic,
            record.partition,
            record.offset,
            error,
        )
        ATTACHMENT_COMMANDS_DEAD_LETTERED.inc()

    def readiness(self) -> dict[str, bool]:
        """Joined the group, and not held by an unavailable dependency (no I/O)."""
        return {
            "kafka": self.joined and self.waiting_for != "kafka",
            "clamd": self.waiting_for != "clamd",
            "storage": self.waiting_for != "storage",
            "postgres": self.waiting_for != "postgres",
        }

    async def _sleep(self, delay: float) -> None:
        try:
            await asyncio.wait_for(self.stop.wait(), delay * random.uniform(0.5, 1.0))
        except TimeoutError:
            return
        raise StopRequestedError


async def run_attachment_processor(settings: Settings, stop: asyncio.Event) -> None:
    """Run one member of the attachment processing group until ``stop`` is set."""
    engine = create_engine(settings.db, pool_size=4, max_overflow=4)
    store = open_store(settings.attachments)
    redis = Redis.from_url(settings.redis.url, socket_timeout=3, socket_connect_timeout=3)
    scanner = ClamdScanner(
        settings.attachments.clamd_address, timeout_s=settings.attachments.scan_timeout_s
    )
    processor = AttachmentProcessor(
        settings.attachments, store, scanner, create_session_factory(engine), redis=redis
    )
    consumer = AttachmentConsumer(settings, processor, stop)
    listen = settings.metrics
    try:
        async with process_listener(listen.host, listen.attachments_port, consumer.readiness):
            await consumer.run()
    finally:
        await redis.aclose()
        await store.close()
        await engine.dispose()
