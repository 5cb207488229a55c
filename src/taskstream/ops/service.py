"""What the dashboard shows, gathered concurrently; a section whose source is down carries
its error and the others still answer, so the page shows what it can."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.db import describe_error
from taskstream.infra.dead_letters import DeadLetter, read_dead_letters, replay_dead_letters
from taskstream.infra.group_members import group_members
from taskstream.infra.lag import ConsumerGroup, applier_group, group_lag
from taskstream.infra.rabbit_queues import queue_depths
from taskstream.ops.repository import OpsRepository
from taskstream.ops.schemas import (
    CommandCounts,
    DeadLetterOut,
    DeadLettersOut,
    LagOut,
    MemberOut,
    OutboxOut,
    PartitionLagOut,
    QueueOut,
    QueuesOut,
    WebhooksOut,
)
from taskstream.settings import Settings

logger = logging.getLogger(__name__)
T = TypeVar("T")
SECTION_TIMEOUT_S = 5.0
VALUE_PREVIEW_CHARS = 2000


async def _bounded(read: Callable[[], Awaitable[T]]) -> T:
    async with asyncio.timeout(SECTION_TIMEOUT_S):
        return await read()


def _error(exc: BaseException) -> str:
    logger.warning("ops: a dashboard section failed: %r", exc)
    return describe_error(exc, 200) if str(exc) else type(exc).__name__


async def consumer_lag(settings: Settings, group: ConsumerGroup | None = None) -> LagOut:
    """Lag per partition and per group member (when the broker reports assignments) of
    ``group`` (default: the applier group)."""
    kafka = settings.kafka
    group = group or applier_group(kafka)
    lag_out = LagOut(group=group.group, topic=group.topic)
    lag, members = await asyncio.gather(
        _bounded(lambda: group_lag(kafka, SECTION_TIMEOUT_S / 2, group)),
        _bounded(lambda: group_members(kafka, SECTION_TIMEOUT_S / 2, group)),
        return_exceptions=True,
    )
    if isinstance(lag, BaseException):
        lag_out.error = _error(lag)
        by_partition: dict[int, int] = {}
    else:
        lag_out.total = lag.total
        lag_out.committed_total = sum(p.committed or 0 for p in lag.partitions)
        lag_out.partitions = [
            PartitionLagOut(partition=p.partition, committed=p.committed, end=p.end, lag=p.lag)
            for p in lag.partitions
        ]
        by_partition = {p.partition: p.lag for p in lag.partitions}
    if isinstance(members, BaseException):
        lag_out.error = lag_out.error or _error(members)
        return lag_out
    lag_out.group_state = members.state
    lag_out.members = [
        MemberOut(
            member_id=m.member_id,
            client_id=m.client_id,
            host=m.host,
            partitions=m.partitions,
            lag=None
            if m.partitions is None or not by_partition
            else sum(by_partition.get(p, 0) for p in m.partitions),
        )
        for m in members.members
    ]
    return lag_out


async def rabbit_queues(settings: Settings) -> QueuesOut:
    try:
        depths = await _bounded(lambda: queue_depths(settings.rabbit))
    except Exception as exc:
        return QueuesOut(error=_error(exc))
    return QueuesOut(
        queues=[
            QueueOut(name=d.name, kind=d.kind, messages=d.messages, consumers=d.consumers)
            for d in depths
        ]
    )


async def database_sections(
    session_factory: async_sessionmaker[AsyncSession],
) -> tuple[CommandCounts, OutboxOut, WebhooksOut]:
    """Command outcomes, the outbox backlog and failing webhook endpoints, one session."""
    try:
        async with asyncio.timeout(SECTION_TIMEOUT_S), session_factory() as session:
            repository = OpsRepository.from_session(session)
            commands = await repository.command_counts()
            outbox = await repository.outbox()
            webhooks = WebhooksOut(failing=await repository.failing_webhooks())
    except Exception as exc:
        error = _error(exc)
        return CommandCounts(error=error), OutboxOut(error=error), WebhooksOut(error=error)
    return commands, outbox, webhooks


def now() -> datetime:
    return datetime.now(UTC)


def _letter_out(letter: DeadLetter) -> DeadLetterOut:
    value = None
    if letter.value is not None:
        value = letter.value.decode(errors="replace")[:VALUE_PREVIEW_CHARS]
    return DeadLetterOut(
        id=letter.id,
        key=letter.key.decode(errors="replace") if letter.key is not None else None,
        original_topic=letter.header("x-original-topic"),
        original_partition=letter.header("x-original-partition"),
        original_offset=letter.header("x-original-offset"),
        failed_at=letter.header("x-failed-at"),
        error=letter.header("x-error"),
        value=value,
    )


async def dead_letters(settings: Settings, limit: int = 200) -> DeadLettersOut:
    """The task-commands dead-letter topic: how many, and the first ``limit`` of them."""
    topic = settings.kafka.task_commands_dlq_topic
    try:
        letters = await read_dead_letters(settings.kafka, timeout_s=SECTION_TIMEOUT_S)
    except Exception as exc:
        return DeadLettersOut(topic=topic, error=_error(exc))
    return DeadLettersOut(
        topic=topic, count=len(letters), letters=[_letter_out(d) for d in letters[:limit]]
    )


async def replay(settings: Settings, ids: list[str] | None) -> list[str]:
    """Re-publish the named dead letters (all when ``ids`` is None) to the commands topic;
    ``LookupError`` for an unknown id. Replaying twice is harmless (the inbox dedupes)."""
    replayed: list[str] = []
    await replay_dead_letters(
        settings.kafka, ids, on_replayed=lambda page: replayed.extend(d.id for d in page)
    )
    logger.info("ops: replayed %d dead letter(s): %s", len(replayed), replayed[:20])
    return replayed
