"""Produce a whole relay batch to Kafka as one record batch per partition.

``AIOKafkaProducer.send`` per message costs a coroutine, a future and a partitioner call each,
and its 16 KiB per-partition batches (one request in flight per broker) split a 1 000-event
relay batch into several sequential round trips. Profiling the relay showed those sends as its
largest cost. Here the records of a relay batch are partitioned exactly like the default
partitioner (murmur2 of the key, as the Java client), appended to one ``BatchBuilder`` per
partition and submitted with ``send_batch``: one future per partition, acked with acks=all.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

# Room for a relay batch in one record batch per partition (events are ~0.5-1 KB), under
# the broker's default 1 MiB per record batch.
RELAY_MAX_BATCH_BYTES = 512 * 1024

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF

KafkaRecord = tuple[bytes, bytes, list[tuple[str, bytes]]]  # key, value, headers


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``), as aiokafka's
    ``DefaultPartitioner`` computes it, but reading 4-byte words at once (about 1.7x faster)."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    body = length & ~3
    for (word,) in struct.iter_unpack("<I", data[:body]):
        k = (word * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length & 3
    if extra >= 3:
        h ^= data[body + 2] << 16
    if extra >= 2:
        h ^= data[body + 1] << 8
    if extra >= 1:
        h ^= data[body]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: Sequence[int]) -> int:
    """The partition aiokafka's default partitioner picks for ``key`` (same as Java's)."""
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]


async def produce_records(
    producer: AIOKafkaProducer, topic: str, records: Sequence[KafkaRecord]
) -> list[asyncio.Future[Any]]:
    """Queue ``records`` for ``topic``; returns futures that resolve once the broker acked them
    (with the producer's acks) or fail. Order within a partition is the order of ``records``."""
    partitions = sorted(await producer.partitions_for(topic))
    builders: dict[int, Any] = {}
    futures: list[asyncio.Future[Any]] = []
    for key, value, headers in records:
        partition = partition_for(key, partitions)
        builder = builders.get(partition)
        if builder is None:
            builder = builders[partition] = producer.create_batch()
        if builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
            # Full: submit it and start another for this partition.
            futures.append(await producer.send_batch(builder, topic, partition=partition))
            builder = builders[partition] = producer.create_batch()
            if builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
                raise MessageSizeTooLargeError(f"a record of {len(value)} bytes for {topic}")
    for partition, builder in builders.items():
        builder.close()  # a closed batch is sent at once instead of lingering
        futures.append(await producer.send_batch(builder, topic, partition=partition))
    return futures
