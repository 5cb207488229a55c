"""Create and describe the Kafka topics taskstream uses."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from taskstream.settings import KafkaSettings


@dataclass(frozen=True, slots=True)
class TopicInfo:
    name: str
    partitions: int
    exists: bool


def topic_names(settings: KafkaSettings) -> list[str]:
    return [
        settings.task_commands_topic,
        settings.task_commands_dlq_topic,
        settings.task_events_topic,
        settings.attachment_commands_topic,
        settings.attachment_commands_dlq_topic,
    ]


async def ensure_topics(
    settings: KafkaSettings, names: list[str] | None = None, partitions: int | None = None
) -> list[str]:
    """Create missing topics with the configured partition count; returns those created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in (names or topic_names(settings)) if n not in existing]
        if missing:
            new = [
                NewTopic(n, partitions or settings.partitions, settings.replication_factor)
                for n in missing
            ]
            # Created concurrently by another process: that is what we wanted.
            with suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
        return missing
    finally:
        await admin.close()


async def delete_topics(settings: KafkaSettings, names: list[str]) -> list[str]:
    """Delete those of ``names`` that exist; returns them. Tests and benchmarks call this for
    their per-run topics: the embedded broker keeps every message in memory until then."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        present = [n for n in names if n in existing]
        if present:
            await admin.delete_topics(present)
        return present
    finally:
        await admin.close()


async def describe_topics(
    settings: KafkaSettings, names: list[str] | None = None
) -> list[TopicInfo]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        wanted = names or topic_names(settings)
        existing = set(await admin.list_topics())
        present = [n for n in wanted if n in existing]
        described = await admin.describe_topics(present) if present else []
        counts = {d["topic"]: len(d["partitions"]) for d in described}
        return [TopicInfo(n, counts.get(n, 0), n in existing) for n in wanted]
    finally:
        await admin.close()
