"""Fixtures for operations tests: whole processes with their own topics, exchange and API port,
plus the notification fixtures they reuse (receivers, processes, a fresh exchange)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator

import pytest

from taskstream.infra.topics import delete_topics, ensure_topics, topic_names
from taskstream.settings import Settings
from tests.integration.notifications.conftest import (  # fixtures shared with notifications
    cleanup_rabbit,
    notif_settings,
    processes,
    receiver_factory,
)

__all__ = ["cleanup_rabbit", "notif_settings", "processes", "receiver_factory"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def system_settings(notif_settings: Settings) -> AsyncIterator[Settings]:
    """Own command/event topics and consumer group, relaxed limits, a free API port."""
    tag = uuid.uuid4().hex[:8]
    kafka = notif_settings.kafka.model_copy(
        update={
            "task_commands_topic": f"task-commands-o{tag}",
            "task_commands_dlq_topic": f"task-commands-o{tag}.dlq",
            "task_events_topic": f"task-events-o{tag}",
            "consumer_group": f"taskstream-o{tag}",
            "partitions": 2,
        }
    )
    limits = notif_settings.limits.model_copy(
        update={
            "anonymous": "100000/minute",
            "login": "100000/minute",
            "registration": "100000/hour",
        }
    )
    api = notif_settings.api.model_copy(update={"port": free_port(), "workers": 1})
    await ensure_topics(kafka)
    yield notif_settings.model_copy(update={"kafka": kafka, "limits": limits, "api": api})
    await delete_topics(kafka, topic_names(kafka))
