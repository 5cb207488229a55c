"""Depths of the notification queues, read with passive ``queue_declare`` (no management
plugin needed): messages ready and consumers per queue. One short-lived connection per call;
a queue that does not exist yet is reported as missing, not created."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pika
from pika.exceptions import ChannelClosedByBroker

from taskstream.infra.rabbit_topology import Topology
from taskstream.settings import RabbitSettings

TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class QueueDepth:
    name: str
    kind: str  # "work", "delay" or "dead-letter"
    messages: int | None  # None: the queue does not exist (yet)
    consumers: int | None


def _kinds(topology: Topology) -> dict[str, str]:
    kinds = dict.fromkeys(topology.queues, "work")
    kinds.update({topology.delay_queue(n): "delay" for n in topology.delay_steps})
    kinds[topology.dlq] = "dead-letter"
    return kinds


def _read_depths(settings: RabbitSettings) -> list[QueueDepth]:
    params = pika.URLParameters(settings.url)
    params.socket_timeout = TIMEOUT_S
    params.blocked_connection_timeout = TIMEOUT_S
    params.connection_attempts = 1
    connection = pika.BlockingConnection(params)
    depths = []
    try:
        channel = connection.channel()
        for name, kind in _kinds(Topology.from_settings(settings)).items():
            try:
                frame = channel.queue_declare(name, passive=True)
            except ChannelClosedByBroker:  # 404: not declared yet; the channel is closed
                depths.append(QueueDepth(name, kind, None, None))
                channel = connection.channel()
                continue
            method = frame.method
            depths.append(QueueDepth(name, kind, method.message_count, method.consumer_count))
    finally:
        connection.close()
    return depths


async def queue_depths(settings: RabbitSettings) -> list[QueueDepth]:
    """Every queue of the fan-out (work, delay, dead-letter) with its depth."""
    return await asyncio.to_thread(_read_depths, settings)
