"""Consumer-group lag of taskstream's two consumer groups: the task-command appliers and the
attachment processors (``consumer_groups``).

End offsets come from ``consumer.highwater`` (set by fetch responses): tansu's ListOffsets
(``end_offsets``) under-reports the end. Committed offsets are asked for per partition: tansu
cannot answer ``list_consumer_group_offsets`` without partitions.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from taskstream.settings import KafkaSettings


@dataclass(frozen=True, slots=True)
class PartitionLag:
    partition: int
    committed: int | None
    end: int
    lag: int


@dataclass(frozen=True, slots=True)
class GroupLag:
    group: str
    topic: str
    partitions: list[PartitionLag]

    @property
    def total(self) -> int:
        return sum(p.lag for p in self.partitions)


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    await consumer.topics()  # loads metadata for every topic
    partitions = consumer.partitions_for_topic(topic) or set()
    return [TopicPartition(topic, p) for p in sorted(partitions)]


async def read_to_end(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], deadline: float
) -> list:
    """Fetch on the assigned ``partitions`` until each position reached its highwater;
    returns the records fetched on the way."""
    records: list = []
    while True:
        pending = []
        for tp in partitions:
            highwater = consumer.highwater(tp)
            if highwater is None or await consumer.position(tp) < highwater:
                pending.append(tp)
        if not pending:
            return records
        if time.monotonic() > deadline:
            raise TimeoutError(f"partitions not read to their end: {pending}")
        batch = await consumer.getmany(*pending, timeout_ms=200)
        for rows in batch.values():
            records.extend(rows)


async def end_offsets(bootstrap: str, topic: str, timeout_s: float) -> dict[int, int]:
    deadline = time.monotonic() + timeout_s
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=64 * 1024,
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, topic)
        if not partitions:
            return {}
        consumer.assign(partitions)
        # Near the end (tansu's answer is at most one batch short), then fetch to the true end.
        await consumer.seek_to_end(*partitions)
        await read_to_end(consumer, partitions, deadline)
        return {tp.partition: consumer.highwater(tp) or 0 for tp in partitions}
    finally:
        await consumer.stop()


async def committed_offsets(
    bootstrap: str, group: str, topic: str, partitions: list[int], timeout_s: float
) -> dict[int, int | None]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        offsets = await asyncio.wait_for(
            admin.list_consumer_group_offsets(group, partitions=tps), timeout_s
        )
    finally:
        await admin.close()
    found = {tp.partition: meta.offset for tp, meta in offsets.items()}
    return {p: (found[p] if found.get(p, -1) >= 0 else None) for p in partitions}


@dataclass(frozen=True, slots=True)
class ConsumerGroup:
    group: str
    topic: str


def applier_group(settings: KafkaSettings) -> ConsumerGroup:
    return ConsumerGroup(settings.consumer_group, settings.task_commands_topic)


def attachments_group(settings: KafkaSettings) -> ConsumerGroup:
    return ConsumerGroup(settings.attachments_consumer_group, settings.attachment_commands_topic)


def consumer_groups(settings: KafkaSettings) -> list[ConsumerGroup]:
    """Every consumer group taskstream runs, with the topic it consumes."""
    return [applier_group(settings), attachments_group(settings)]


async def group_lag(
    settings: KafkaSettings, timeout_s: float = 10.0, group: ConsumerGroup | None = None
) -> GroupLag:
    """Committed, end and lag per partition of ``group`` (default: the applier group),
    bounded by ``timeout``."""
    group = group or applier_group(settings)
    ends = await end_offsets(settings.bootstrap_servers, group.topic, timeout_s)
    committed = await committed_offsets(
        settings.bootstrap_servers, group.group, group.topic, sorted(ends), timeout_s
    )
    rows = [
        PartitionLag(p, committed[p], ends[p], max(0, ends[p] - (committed[p] or 0)))
        for p in sorted(ends)
    ]
    return GroupLag(group.group, group.topic, rows)


async def total_lag(
    settings: KafkaSettings, timeout_s: float = 3.0, group: ConsumerGroup | None = None
) -> int:
    """The group's total lag, for /health."""
    return (await asyncio.wait_for(group_lag(settings, timeout_s, group), timeout_s * 2)).total
