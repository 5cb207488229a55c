"""Inspect and replay the RabbitMQ dead-letter queue (an operator tool: BlockingConnection)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from taskstream.settings import RabbitSettings

from .topology import Topology

REASON_HEADER = "x-dead-letter-reason"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    message_id: str | None
    event_type: str | None
    reason: str
    original_queue: str | None
    dead_lettered_at: str | None
    body: bytes
    headers: dict[str, Any]


def _open(settings: RabbitSettings) -> tuple[pika.BlockingConnection, BlockingChannel]:
    connection = pika.BlockingConnection(pika.URLParameters(settings.url))
    channel = connection.channel()
    channel.confirm_delivery()
    return connection, channel


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _letters(channel: BlockingChannel, queue: str, limit: int) -> Iterator[tuple[int, DeadLetter]]:
    for _ in range(limit):
        method, props, body = channel.basic_get(queue, auto_ack=False)
        if method is None:
            return
        headers = dict(props.headers or {})
        yield (
            method.delivery_tag,
            DeadLetter(
                message_id=props.message_id,
                event_type=props.type,
                reason=_text(headers.get(REASON_HEADER)) or "unknown",
                original_queue=_text(headers.get("x-original-queue")),
                dead_lettered_at=_text(headers.get("x-dead-lettered-at")),
                body=body,
                headers=headers,
            ),
        )


def list_dead_letters(settings: RabbitSettings, limit: int = 100) -> list[DeadLetter]:
    """Peek at up to ``limit`` dead letters; they stay in the queue."""
    connection, channel = _open(settings)
    try:
        return [
            letter for _, letter in _letters(channel, Topology.from_settings(settings).dlq, limit)
        ]
    finally:
        connection.close()


def replay_dead_letters(settings: RabbitSettings, limit: int = 100) -> int:
    """Move up to ``limit`` dead letters back to the queue they came from; returns how many."""
    topology = Topology.from_settings(settings)
    connection, channel = _open(settings)
    moved = 0
    try:
        for tag, letter in _letters(channel, topology.dlq, limit):
            queue = letter.original_queue or topology.work_queue("in_app")
            headers = {k: v for k, v in letter.headers.items() if not k.startswith("x-dead-")}
            headers["x-replayed-from-dlq"] = True
            channel.basic_publish(
                "",
                queue,
                letter.body,
                pika.BasicProperties(
                    delivery_mode=2,
                    content_type="application/json",
                    message_id=letter.message_id,
                    type=letter.event_type,
                    headers=headers,
                ),
            )  # confirmed (blocking) before the ack below removes it from the DLQ
            channel.basic_ack(tag)
            moved += 1
        return moved
    finally:
        connection.close()


def purge_dead_letters(settings: RabbitSettings) -> int:
    connection, channel = _open(settings)
    try:
        result = channel.queue_purge(Topology.from_settings(settings).dlq)
        return int(result.method.message_count)
    finally:
        connection.close()
