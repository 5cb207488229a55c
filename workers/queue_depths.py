"""Depths of the notification queues, for `taskstream status`: from the management plugin's
HTTP API when it is configured (ready and unacknowledged messages), else a passive
``queue_declare`` over AMQP (ready messages only; declares nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import httpx
import pika
from pika.exceptions import ChannelClosedByBroker

from taskstream.settings import RabbitSettings

from .topology import Topology


@dataclass(frozen=True, slots=True)
class QueueDepth:
    queue: str
    ready: int | None  # None: the queue does not exist (yet)
    unacked: int | None
    consumers: int | None


def queue_depths(settings: RabbitSettings, timeout_s: float = 5.0) -> tuple[str, list[QueueDepth]]:
    """(source, depth per queue of the topology): source is ``management`` or ``amqp``."""
    queues = Topology.from_settings(settings).queues
    if settings.management_url:
        try:
            return "management", _from_management(settings, queues, timeout_s)
        except httpx.HTTPError:
            pass  # the plugin is off or unreachable: AMQP still answers
    return "amqp", _from_amqp(settings.url, queues, timeout_s)


def _from_management(
    settings: RabbitSettings, queues: list[str], timeout_s: float
) -> list[QueueDepth]:
    amqp = urlsplit(settings.url)
    vhost = unquote(amqp.path[1:]) if len(amqp.path) > 1 else "/"
    auth = (unquote(amqp.username or "guest"), unquote(amqp.password or "guest"))
    base = str(settings.management_url).rstrip("/")
    depths = []
    with httpx.Client(auth=auth, timeout=timeout_s) as client:
        for queue in queues:
            response = client.get(
                f"{base}/api/queues/{quote(vhost, safe='')}/{quote(queue, safe='')}"
            )
            if response.status_code == 404:
                depths.append(QueueDepth(queue, None, None, None))
                continue
            response.raise_for_status()
            info = response.json()
            depths.append(
                QueueDepth(
                    queue,
                    int(info.get("messages_ready", 0)),
                    int(info.get("messages_unacknowledged", 0)),
                    int(info.get("consumers", 0)),
                )
            )
    return depths


def _from_amqp(url: str, queues: list[str], timeout_s: float) -> list[QueueDepth]:
    parameters = pika.URLParameters(url)
    parameters.socket_timeout = timeout_s
    parameters.blocked_connection_timeout = timeout_s
    connection = pika.BlockingConnection(parameters)
    depths = []
    try:
        channel = connection.channel()
        for queue in queues:
            try:
                ok = channel.queue_declare(queue, passive=True).method
            except ChannelClosedByBroker:  # 404: not declared yet; the channel is closed
                depths.append(QueueDepth(queue, None, None, None))
                channel = connection.channel()
                continue
            depths.append(QueueDepth(queue, ok.message_count, None, ok.consumer_count))
    finally:
        connection.close()
    return depths
