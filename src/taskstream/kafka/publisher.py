"""The API's publisher: one shared producer that sends task commands keyed by task id and
answers within ``publish_timeout_s`` (the producer's delivery settings: ``producer.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from taskstream.errors import UnavailableError
from taskstream.kafka.producer import new_producer
from taskstream.kafka.timeout_slots import TimeoutSlots
from taskstream.messages import COMMAND_TYPE_HEADER, TaskCommand, encode_command
from taskstream.observability.metrics import PUBLISH_FAILURES, PUBLISH_LATENCY, PUBLISHED_COMMANDS
from taskstream.observability.tracing import current_command_id, trace_headers
from taskstream.settings import KafkaSettings

logger = logging.getLogger(__name__)

RECONNECT_INTERVAL_S = 1.0


class CommandPublisher:
    """Publishes task commands keyed by task id; raises ``UnavailableError`` within the timeout."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.topic = settings.task_commands_topic
        self.timeout_s = settings.publish_timeout_s
        self.retry_after_s = max(1, round(settings.publish_timeout_s))
        self._producer: AIOKafkaProducer | None = None
        self._deadlines = TimeoutSlots(settings.publish_timeout_s)
        self._connector: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self._producer is not None

    async def reachable(self, timeout_s: float) -> bool:
        """Whether the broker answers a metadata request on the producer's own connections
        (for readiness: bounded, no client of its own)."""
        producer = self._producer
        if producer is None:
            return False
        try:
            async with asyncio.timeout(timeout_s):
                await producer.client.fetch_all_metadata()
        except Exception:
            return False
        return True

    def _new_producer(self) -> AIOKafkaProducer:
        return new_producer(
            self.settings,
            linger_ms=self.settings.linger_ms,  # concurrent requests share a batch
            max_batch_size=256 * 1024,
            max_request_size=4 * 1024 * 1024,  # a 1000-item batch fits in one request
            request_timeout_ms=int(self.settings.publish_timeout_s * 1000),
            retry_backoff_ms=100,
            metadata_max_age_ms=60_000,
        )

    async def start(self) -> None:
        """Connect now if the broker answers; otherwise keep trying in the background so the
        API starts (and reports the broker down in /health) instead of crashing."""
        if not await self._try_connect():
            self._connector = asyncio.create_task(self._connect_forever())

    async def _try_connect(self) -> bool:
        producer = self._new_producer()
        try:
            async with asyncio.timeout(self.timeout_s):
                await producer.start()
                await producer.partitions_for(self.topic)  # warm metadata for the first send
        except (KafkaError, OSError, TimeoutError) as exc:
            logger.warning("kafka producer not connected yet: %r", exc)
            with contextlib.suppress(Exception):
                await producer.stop()
            return False
        self._producer = producer
        logger.info("kafka producer connected to %s", self.settings.bootstrap_servers)
        return True

    async def _connect_forever(self) -> None:
        while True:
            if await self._try_connect():
                return
            await asyncio.sleep(RECONNECT_INTERVAL_S)

    async def stop(self) -> None:
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connector
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def publish(self, commands: Sequence[TaskCommand], trace_id: str) -> None:
        """Send every command and wait for all acknowledgements, or raise ``UnavailableError``
        within ``publish_timeout_s``. ``trace_id`` is the request's trace context
        (``traceparent``), sent in the headers of every command.

        A batch is not atomic (tansu has no transactions): after a 503 some of its commands may
        have been delivered. Clients retry with the same Idempotency-Key, which reproduces the
        same command ids, and the consumer dedupes them.
        """
        if len(commands) == 1:  # the request's log lines name its command
            current_command_id.set(str(commands[0].command_id))
        await self.publish_records(
            self.topic,
            [
                (str(command.task_id).encode(), encode_command(command), command.type)
                for command in commands
            ],
            trace_id,
        )

    async def publish_records(
        self, topic: str, records: Sequence[tuple[bytes, bytes, str]], trace_id: str
    ) -> None:
        """Send encoded ``(key, value, command type)`` records to ``topic`` with the same
        acknowledgement and timeout rules as ``publish`` (other command topics use this)."""
        producer = self._producer
        if producer is None:
            PUBLISH_FAILURES.labels("not_connected").inc()
            raise UnavailableError("The message broker is unavailable", self.retry_after_s)
        trace = trace_headers(trace_id)  # traceparent, and x-trace-id for older readers
        started = time.perf_counter()
        deadline = self._deadlines.arm()
        try:
            acks = [
                await producer.send(
                    topic,
                    value=value,
                    key=key,
                    headers=[*trace, (COMMAND_TYPE_HEADER, command_type.encode())],
                )
                for key, value, command_type in records
            ]
            # one command (the hot path): await its future, no gather
            await (acks[0] if len(acks) == 1 else asyncio.gather(*acks))
        except asyncio.CancelledError:
            if not deadline.expired_here():
                raise  # the caller was cancelled (client gone): not ours to translate
            PUBLISH_FAILURES.labels("timeout").inc()
            logger.warning("publishing %d command(s) timed out", len(records))
            raise UnavailableError(
                "The message broker did not acknowledge the command in time", self.retry_after_s
            ) from None
        except KafkaError as exc:
            PUBLISH_FAILURES.labels("error").inc()
            logger.warning("publishing %d command(s) failed: %r", len(records), exc)
            raise UnavailableError(
                "The message broker did not acknowledge the command in time", self.retry_after_s
            ) from exc
        finally:
            deadline.disarm()
        PUBLISH_LATENCY.observe(time.perf_counter() - started)
        PUBLISHED_COMMANDS.inc(len(records))
