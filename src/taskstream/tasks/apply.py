"""Apply a batch of task commands in the caller's transaction, exactly once in effect.

The stream consumer calls ``apply_task_commands`` once per Kafka batch and commits offsets only
after the transaction committed; tests call it directly. Per batch the database sees a fixed
number of statements whatever the batch size: claim the inbox, lock the touched tasks, load the
memberships, then one set-based write per table.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.enums import CommandState
from taskstream.messages import CreateTask, DomainEvent, TaskCommand
from taskstream.outbox.ids import fast_event_id
from taskstream.outbox.repository import OutboxRecord, OutboxRepository, outbox_record
from taskstream.tasks.repository import AuditRecord, StatusRecord, TaskRepository, audit_record
from taskstream.tasks.rules import Decision, Rejected, ReviewRecord, TaskState, decide, pairs_needed
from taskstream.tasks.stats import StatsDelta

# The inbox is shared by every consumer of the database; this names ours.
INBOX_CONSUMER = "task-commands"


@dataclass(slots=True)
class InboundCommand:
    """A decoded command and where it came from (recorded in the inbox for forensics)."""

    command: TaskCommand
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    trace_id: str | None = None


@dataclass(slots=True)
class ApplyResult:
    applied: list[uuid.UUID] = field(default_factory=list)
    rejected: dict[uuid.UUID, str] = field(default_factory=dict)
    duplicates: int = 0

    @property
    def settled(self) -> int:
        return len(self.applied) + len(self.rejected)


@dataclass(slots=True)
class _Writes:
    audit: list[AuditRecord] = field(default_factory=list)
    outbox: list[OutboxRecord] = field(default_factory=list)
    statuses: list[StatusRecord] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)  # command ids, for NOTIFY
    reviews: list[ReviewRecord] = field(default_factory=list)
    stats: StatsDelta = field(default_factory=StatsDelta)


async def apply_task_commands(
    session: AsyncSession,
    commands: Sequence[TaskCommand | InboundCommand],
    *,
    now: datetime | None = None,
) -> ApplyResult:
    """Apply ``commands`` (in stream order) inside the session's current transaction.

    A command id seen before (in the inbox, or earlier in this batch) is skipped and counted
    as a duplicate. Every other command ends up applied or rejected with a reason, with its
    status, audit row, outbox events and counters written in the same transaction. The caller
    commits; a rollback leaves no trace, so the whole batch can simply be retried.
    """
    now = now or datetime.now(UTC)
    repo = TaskRepository.from_session(session)
    result = ApplyResult()
    inbound = _unique(commands, result)
    fresh = await repo.claim_inbox(
        INBOX_CONSUMER,
        [i.command.command_id for i in inbound],
        [i.topic for i in inbound],
        [i.partition for i in inbound],
        [i.offset for i in inbound],
    )
    todo = [i for i in inbound if i.command.command_id in fresh]
    result.duplicates += len(inbound) - len(todo)
    if not todo:
        return result

    stored = await repo.lock_tasks(i.command.task_id for i in todo)
    projects = {task_id: task.project_id for task_id, task in stored.items()}
    for item in todo:
        if isinstance(item.command.payload, CreateTask):
            projects.setdefault(item.command.task_id, item.command.payload.project_id)
    pairs: set[tuple[uuid.UUID, uuid.UUID]] = set()
    for item in todo:
        pairs |= pairs_needed(item.command, projects.get(item.command.task_id))
    access = await repo.load_access(pairs)

    working: dict[uuid.UUID, TaskState | None] = dict(stored)
    writes = _Writes()
    for item in todo:
        command = item.command
        try:
            decision = decide(command, working.get(command.task_id), access, now)
        except Rejected as exc:
            result.rejected[command.command_id] = exc.reason
            writes.statuses.append(_status(command, CommandState.REJECTED, exc.reason, now))
            writes.settled.append(str(command.command_id))
            continue
        working[command.task_id] = decision.after
        result.applied.append(command.command_id)
        _record(item, decision, writes, now)

    created = [t for i, t in working.items() if t is not None and i not in stored]
    changed = [
        t for i, t in working.items() if t is not None and i in stored and t is not stored[i]
    ]
    await repo.insert_tasks(created)
    await repo.update_tasks(changed)
    await repo.insert_reviews(writes.reviews, now)
    await repo.insert_audit(writes.audit)
    # event ids derive from command ids claimed in this transaction's inbox: new, so COPY
    await OutboxRepository.from_session(session).copy(writes.outbox)
    await repo.insert_statuses(writes.statuses)
    await repo.add_stats(writes.stats, now)
    await repo.notify_settled(writes.settled)
    return result


async def reject_undeliverable(
    session: AsyncSession, item: InboundCommand, reason: str, *, now: datetime | None = None
) -> bool:
    """Record one command as rejected without applying it (it failed in a way no retry fixes,
    e.g. a value the database refuses). Returns False if it was settled before."""
    now = now or datetime.now(UTC)
    repo = TaskRepository.from_session(session)
    command = item.command
    claimed = await repo.claim_inbox(
        INBOX_CONSUMER, [command.command_id], [item.topic], [item.partition], [item.offset]
    )
    if not claimed:
        return False
    await repo.insert_statuses([_status(command, CommandState.REJECTED, reason, now)])
    await repo.notify_settled([str(command.command_id)])
    return True


def _unique(
    commands: Sequence[TaskCommand | InboundCommand], result: ApplyResult
) -> list[InboundCommand]:
    seen: set[uuid.UUID] = set()
    unique: list[InboundCommand] = []
    for entry in commands:
        item = entry if isinstance(entry, InboundCommand) else InboundCommand(entry)
        if item.command.command_id in seen:
            result.duplicates += 1
            continue
        seen.add(item.command.command_id)
        unique.append(item)
    return unique


def _status(
    command: TaskCommand, state: CommandState, reason: str | None, now: datetime
) -> StatusRecord:
    return (
        command.command_id,
        command.type,
        command.task_id,
        command.actor.user_id,
        state,
        reason,
        command.occurred_at,
        now,
    )


def _record(item: InboundCommand, decision: Decision, writes: _Writes, now: datetime) -> None:
    command, after = item.command, decision.after
    command_id, actor_id = command.command_id, command.actor.user_id
    command_key = str(command_id)  # formatted once: event ids and the NOTIFY payload
    writes.settled.append(command_key)
    writes.statuses.append(_status(command, CommandState.APPLIED, None, now))
    writes.audit.append(
        audit_record(
            command_id,
            actor_id=actor_id,
            event_type=decision.audit_type,
            before=decision.before,
            after=after,
            occurred_at=now,
        )
    )
    base = after.event_data()
    for event_type, extra in decision.events:
        event = DomainEvent(
            event_id=fast_event_id(command_key, event_type),
            type=event_type,
            occurred_at=now,
            aggregate_id=after.id,
            actor_id=actor_id,
            project_id=after.project_id,
            trace_id=item.trace_id,
            data={**base, **extra} if extra else base,
        )
        writes.outbox.append(outbox_record(event))
    if decision.review is not None:
        writes.reviews.append(decision.review)
    writes.stats.record(decision.before, after, now)
