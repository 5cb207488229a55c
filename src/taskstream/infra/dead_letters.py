"""The dead-letter topic of task commands: list what is in it, replay chosen messages.

A dead letter keeps the original key, value and headers and adds ``x-error``,
``x-original-topic``, ``x-original-partition``, ``x-original-offset`` and ``x-failed-at``.
It is named ``<partition>:<offset>`` within the dead-letter topic.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer

from taskstream.infra.lag import read_to_end, topic_partitions
from taskstream.kafka import new_producer
from taskstream.settings import KafkaSettings

ERROR_HEADERS = frozenset(
    {"x-error", "x-original-topic", "x-original-partition", "x-original-offset", "x-failed-at"}
)
REPLAYED_FROM_HEADER = "x-replayed-from"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode(errors="replace")
        return None

    @property
    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v) for k, v in self.headers if k not in ERROR_HEADERS]


async def read_dead_letters(settings: KafkaSettings, timeout_s: float = 15.0) -> list[DeadLetter]:
    """Every message in the dead-letter topic, in partition then offset order."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, settings.task_commands_dlq_topic)
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records = await read_to_end(consumer, partitions, time.monotonic() + timeout_s)
    finally:
        await consumer.stop()
    records.sort(key=lambda r: (r.partition, r.offset))
    return [
        DeadLetter(f"{r.partition}:{r.offset}", r.key, r.value, list(r.headers or ()))
        for r in records
    ]


async def replay_dead_letters(
    settings: KafkaSettings, ids: list[str] | None = None, value: bytes | None = None
) -> list[DeadLetter]:
    """Re-publish dead letters (all, or those named) to the commands topic with their
    original key and headers; ``value`` replaces the body (a fixed message, one id only).
    Replaying twice is harmless: a command id applied once is a duplicate afterwards."""
    letters = await read_dead_letters(settings)
    if ids:
        wanted = set(ids)
        letters = [d for d in letters if d.id in wanted]
        missing = wanted - {d.id for d in letters}
        if missing:
            raise LookupError(f"no dead letter with id {', '.join(sorted(missing))}")
    if value is not None and len(letters) != 1:
        raise ValueError("a replacement value needs exactly one dead-letter id")
    producer = new_producer(settings)
    await producer.start()
    try:
        for letter in letters:
            headers = [*letter.original_headers, (REPLAYED_FROM_HEADER, letter.id.encode())]
            await producer.send_and_wait(
                settings.task_commands_topic,
                value=value if value is not None else letter.value,
                key=letter.key,
                headers=headers,
            )
    finally:
        await producer.stop()
    return letters
