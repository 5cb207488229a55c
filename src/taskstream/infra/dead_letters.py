"""The dead-letter topic of task commands: list what is in it, replay chosen messages.

A dead letter keeps the original key, value and headers and adds ``x-error``,
``x-original-topic``, ``x-original-partition``, ``x-original-offset`` and ``x-failed-at``.
It is named ``<partition>:<offset>`` within the dead-letter topic. Listing and replaying read
the topic a page at a time (and a named letter where it is), never the whole topic at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from taskstream.infra.lag import end_offsets, topic_partitions
from taskstream.kafka import new_producer
from taskstream.settings import KafkaSettings

ERROR_HEADERS = frozenset(
    {"x-error", "x-original-topic", "x-original-partition", "x-original-offset", "x-failed-at"}
)
REPLAYED_FROM_HEADER = "x-replayed-from"


def dead_letter_headers(
    headers: Sequence[tuple[str, bytes]] | None,
    error: str,
    topic: str | None,
    partition: int | None,
    offset: int | None,
) -> list[tuple[str, bytes]]:
    """The original headers plus what failed, where the message came from and when."""
    extra = {
        "x-error": error[:1000],
        "x-original-topic": topic or "",
        "x-original-partition": str(partition),
        "x-original-offset": str(offset),
        "x-failed-at": datetime.now(UTC).isoformat(),
    }
    return [*(headers or ()), *((k, v.encode()) for k, v in extra.items())]


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


def attachment_dead_letters(settings: KafkaSettings) -> KafkaSettings:
    """``settings`` seen from the attachment commands' dead-letter topic, so listing,
    counting and replaying (which read ``task_commands_dlq_topic`` and replay to
    ``task_commands_topic``) work on the attachment topics instead."""
    return settings.model_copy(
        update={
            "task_commands_topic": settings.attachment_commands_topic,
            "task_commands_dlq_topic": settings.attachment_commands_dlq_topic,
        }
    )


def parse_id(letter_id: str) -> tuple[int, int]:
    """``<partition>:<offset>`` -> (partition, offset); ValueError if malformed."""
    partition, sep, offset = letter_id.partition(":")
    if not sep or not partition.isdigit() or not offset.isdigit():
        raise ValueError(f"a dead-letter id is <partition>:<offset>, not {letter_id!r}")
    return int(partition), int(offset)


def _letter(record: ConsumerRecord[bytes, bytes]) -> DeadLetter:
    return DeadLetter(
        f"{record.partition}:{record.offset}", record.key, record.value, list(record.headers or ())
    )


def _reader(settings: KafkaSettings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
    )


async def dead_letter_pages(
    settings: KafkaSettings,
    page_size: int = 500,
    after: str | None = None,
    timeout_s: float = 15.0,
) -> AsyncIterator[list[DeadLetter]]:
    """The dead-letter topic in partition then offset order, ``page_size`` letters at a time,
    starting after the id ``after``: memory stays one page, whatever the topic holds. Each
    page has to arrive within ``timeout_s``."""
    start_partition, start_offset = parse_id(after) if after else (-1, -1)
    consumer = _reader(settings)
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, settings.task_commands_dlq_topic)
        page: list[DeadLetter] = []
        for tp in partitions:
            if tp.partition < start_partition:
                continue
            consumer.assign([tp])
            if tp.partition == start_partition:
                consumer.seek(tp, start_offset + 1)
            else:
                await consumer.seek_to_beginning(tp)
            deadline = time.monotonic() + timeout_s
            while True:
                highwater = consumer.highwater(tp)
                if highwater is not None and await consumer.position(tp) >= highwater:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"dead letters of partition {tp.partition} not read")
                fetched = await consumer.getmany(tp, timeout_ms=200, max_records=page_size)
                for record in fetched.get(tp, ()):
                    page.append(_letter(record))
                    if len(page) == page_size:
                        yield page
                        page = []
                        deadline = time.monotonic() + timeout_s
        if page:
            yield page
    finally:
        await consumer.stop()


async def read_dead_letters(
    settings: KafkaSettings,
    timeout_s: float = 15.0,
    *,
    limit: int | None = None,
    after: str | None = None,
) -> list[DeadLetter]:
    """Dead letters in partition then offset order: all of them, or one page of at most
    ``limit`` after the id ``after`` (``dlq list`` pages with these)."""
    letters: list[DeadLetter] = []
    async for page in dead_letter_pages(settings, limit or 500, after, timeout_s):
        letters += page
        if limit is not None and len(letters) >= limit:
            return letters[:limit]
    return letters


async def fetch_dead_letters(
    settings: KafkaSettings, ids: Sequence[str], timeout_s: float = 15.0
) -> list[DeadLetter]:
    """The dead letters named by id, read where they are (no scan of the topic)."""
    wanted = [(letter_id, *parse_id(letter_id)) for letter_id in dict.fromkeys(ids)]
    consumer = _reader(settings)
    await consumer.start()
    found: list[DeadLetter] = []
    missing: list[str] = []
    try:
        topic = settings.task_commands_dlq_topic
        known = {tp.partition for tp in await topic_partitions(consumer, topic)}
        for letter_id, partition, offset in wanted:
            tp = TopicPartition(topic, partition)
            if partition not in known:
                missing.append(letter_id)
                continue
            consumer.assign([tp])
            consumer.seek(tp, offset)
            record = await _record_at(consumer, tp, offset, time.monotonic() + timeout_s)
            if record is None:
                missing.append(letter_id)
            else:
                found.append(_letter(record))
    finally:
        await consumer.stop()
    if missing:
        raise LookupError(f"no dead letter with id {', '.join(sorted(missing))}")
    return found


async def _record_at(
    consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int, deadline: float
) -> ConsumerRecord[bytes, bytes] | None:
    while time.monotonic() < deadline:
        fetched = await consumer.getmany(tp, timeout_ms=200, max_records=1)
        for record in fetched.get(tp, ()):
            return record if record.offset == offset else None
        highwater = consumer.highwater(tp)
        if highwater is not None and offset >= highwater:
            return None  # past the end
    raise TimeoutError(f"dead letter {tp.partition}:{offset} not read in time")


async def dead_letter_count(settings: KafkaSettings, timeout_s: float = 10.0) -> int:
    """How many dead letters the topic holds (end minus start offset, per partition)."""
    ends = await end_offsets(
        settings.bootstrap_servers, settings.task_commands_dlq_topic, timeout_s
    )
    if not ends:
        return 0
    consumer = _reader(settings)
    await consumer.start()
    try:
        topic = settings.task_commands_dlq_topic
        starts = await consumer.beginning_offsets([TopicPartition(topic, p) for p in ends])
    finally:
        await consumer.stop()
    return sum(max(0, ends[tp.partition] - start) for tp, start in starts.items())


async def replay_dead_letters(
    settings: KafkaSettings,
    ids: Sequence[str] | None = None,
    value: bytes | None = None,
    on_replayed: Callable[[list[DeadLetter]], None] | None = None,
) -> int:
    """Re-publish dead letters (all, or those named) to the commands topic with their
    original key and headers; ``value`` replaces the body (a fixed message, one id only).
    Replaying twice is harmless: a command id applied once is a duplicate afterwards.

    Sends are pipelined: a page of letters is handed to the producer at once, then its
    acknowledgements (acks=all) are awaited together, so a replay of many letters takes a
    few round trips per page instead of one per letter. ``on_replayed`` gets each page once
    the broker has it; returns how many were replayed."""
    if value is not None and (not ids or len(ids) != 1):
        raise ValueError("a replacement value needs exactly one dead-letter id")
    # Fail before sending anything if an id does not exist.
    named = await fetch_dead_letters(settings, ids) if ids else None
    producer = new_producer(settings, linger_ms=5, max_batch_size=1024 * 1024)
    await producer.start()
    replayed = 0
    try:
        pages = _single_page(named) if named is not None else dead_letter_pages(settings)
        async for page in pages:
            acks = [
                await producer.send(
                    settings.task_commands_topic,
                    value=value if value is not None else letter.value,
                    key=letter.key,
                    headers=[*letter.original_headers, (REPLAYED_FROM_HEADER, letter.id.encode())],
                )
                for letter in page
            ]
            await asyncio.gather(*acks)
            replayed += len(page)
            if on_replayed is not None:
                on_replayed(page)
    finally:
        await producer.stop()
    return replayed


async def _single_page(letters: list[DeadLetter]) -> AsyncIterator[list[DeadLetter]]:
    yield letters
