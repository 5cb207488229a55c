"""All SQL the task-command applier runs. Every statement handles a whole batch: arrays in,
``unnest`` in SQL, one round trip per statement whatever the batch size."""

# SQL text below interpolates module constants (column lists) only, never input.
# ruff: noqa: S608

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.enums import CommandState, ProjectRole, TaskPriority, TaskStatus
from taskstream.messages import DomainEvent, encode_event
from taskstream.tasks.rules import Access, ReviewRecord, TaskState

# Channel the apply transaction notifies with the ids of commands it settled; listened to by
# `GET /commands/{id}?wait=N`. A NOTIFY payload is limited to 8000 bytes: ids go in chunks.
COMMANDS_CHANNEL = "taskstream_commands"
NOTIFY_IDS_PER_MESSAGE = 200

_json = msgspec.json.Encoder()

_TASK_COLUMNS = (
    "id, project_id, title, description, status, priority, deadline, assignee_id, reviewer_id, "
    "created_by, version, created_at, updated_at, completed_at, deleted_at"
)

_CLAIM_INBOX = text(
    """
    INSERT INTO inbox (consumer, message_id, topic, partition, "offset")
    SELECT :consumer, m, t, p, o
    FROM unnest(CAST(:ids AS uuid[]), CAST(:topics AS text[]), CAST(:partitions AS int[]),
                CAST(:offsets AS bigint[])) AS u(m, t, p, o)
    ON CONFLICT DO NOTHING
    RETURNING message_id
    """
)

_LOCK_TASKS = text(
    f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = ANY(CAST(:ids AS uuid[])) ORDER BY id FOR UPDATE"
)

_ROLES = text(
    """
    SELECT m.project_id, m.user_id, m.role::text
    FROM project_members AS m
    JOIN unnest(CAST(:projects AS uuid[]), CAST(:users AS uuid[])) AS u(p, usr)
      ON m.project_id = u.p AND m.user_id = u.usr
    """
)

_INSERT_TASKS = text(
    f"""
    INSERT INTO tasks ({_TASK_COLUMNS})
    SELECT id, project_id, title, description, status::task_status, priority::task_priority,
           deadline, assignee_id, reviewer_id, created_by, version, created_at, updated_at,
           completed_at, deleted_at
    FROM unnest(CAST(:id AS uuid[]), CAST(:project_id AS uuid[]), CAST(:title AS text[]),
                CAST(:description AS text[]), CAST(:status AS text[]), CAST(:priority AS text[]),
                CAST(:deadline AS timestamptz[]), CAST(:assignee_id AS uuid[]),
                CAST(:reviewer_id AS uuid[]), CAST(:created_by AS uuid[]),
                CAST(:version AS int[]), CAST(:created_at AS timestamptz[]),
                CAST(:updated_at AS timestamptz[]), CAST(:completed_at AS timestamptz[]),
                CAST(:deleted_at AS timestamptz[]))
      AS u({_TASK_COLUMNS})
    ON CONFLICT (id) DO NOTHING
    RETURNING id
    """
)

_UPDATE_TASKS = text(
    f"""
    UPDATE tasks AS t SET
      title = u.title, description = u.description, status = u.status::task_status,
      priority = u.priority::task_priority, deadline = u.deadline, assignee_id = u.assignee_id,
      reviewer_id = u.reviewer_id, version = u.version, updated_at = u.updated_at,
      completed_at = u.completed_at, deleted_at = u.deleted_at
    FROM unnest(CAST(:id AS uuid[]), CAST(:project_id AS uuid[]), CAST(:title AS text[]),
                CAST(:description AS text[]), CAST(:status AS text[]), CAST(:priority AS text[]),
                CAST(:deadline AS timestamptz[]), CAST(:assignee_id AS uuid[]),
                CAST(:reviewer_id AS uuid[]), CAST(:created_by AS uuid[]),
                CAST(:version AS int[]), CAST(:created_at AS timestamptz[]),
                CAST(:updated_at AS timestamptz[]), CAST(:completed_at AS timestamptz[]),
                CAST(:deleted_at AS timestamptz[]))
      AS u({_TASK_COLUMNS})
    WHERE t.id = u.id
    """
)

_INSERT_TASK_EVENTS = text(
    """
    INSERT INTO task_events
      (task_id, project_id, command_id, actor_id, event_type, before, after, occurred_at)
    SELECT t, p, c, a, e, b::jsonb, af::jsonb, o
    FROM unnest(CAST(:task_ids AS uuid[]), CAST(:project_ids AS uuid[]),
                CAST(:command_ids AS uuid[]), CAST(:actor_ids AS uuid[]),
                CAST(:types AS text[]), CAST(:befores AS text[]), CAST(:afters AS text[]),
                CAST(:occurred AS timestamptz[])) AS u(t, p, c, a, e, b, af, o)
    """
)

_INSERT_REVIEWS = text(
    """
    INSERT INTO task_reviews (id, task_id, reviewer_id, verdict, comment, created_at)
    SELECT i, t, r, v::review_verdict, c, :now
    FROM unnest(CAST(:ids AS uuid[]), CAST(:task_ids AS uuid[]), CAST(:reviewers AS uuid[]),
                CAST(:verdicts AS text[]), CAST(:comments AS text[])) AS u(i, t, r, v, c)
    ON CONFLICT (id) DO NOTHING
    """
)

_INSERT_OUTBOX = text(
    """
    INSERT INTO outbox (event_id, event_type, aggregate_id, payload, trace_id)
    SELECT i, t, a, p, tr
    FROM unnest(CAST(:ids AS uuid[]), CAST(:types AS text[]), CAST(:aggregates AS uuid[]),
                CAST(:payloads AS bytea[]), CAST(:traces AS text[])) AS u(i, t, a, p, tr)
    ON CONFLICT (event_id) DO NOTHING
    """
)

_INSERT_STATUSES = text(
    """
    INSERT INTO command_statuses
      (command_id, command_type, task_id, actor_id, status, reason, accepted_at, applied_at)
    SELECT c, ty, t, a, s::command_state, r, acc, :now
    FROM unnest(CAST(:ids AS uuid[]), CAST(:types AS text[]), CAST(:task_ids AS uuid[]),
                CAST(:actors AS uuid[]), CAST(:states AS text[]), CAST(:reasons AS text[]),
                CAST(:accepted AS timestamptz[])) AS u(c, ty, t, a, s, r, acc)
    ON CONFLICT (command_id) DO NOTHING
    """
)

_NOTIFY = text(
    f"SELECT count(pg_notify('{COMMANDS_CHANNEL}', p)) FROM unnest(CAST(:payloads AS text[])) p"
)


@dataclass(frozen=True, slots=True)
class InboxRow:
    command_id: uuid.UUID
    topic: str | None
    partition: int | None
    offset: int | None


@dataclass(frozen=True, slots=True)
class AuditRow:
    task_id: uuid.UUID
    project_id: uuid.UUID
    command_id: uuid.UUID
    actor_id: uuid.UUID
    event_type: str
    before: TaskState | None
    after: TaskState
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class StatusRow:
    command_id: uuid.UUID
    command_type: str
    task_id: uuid.UUID
    actor_id: uuid.UUID
    state: CommandState
    reason: str | None
    accepted_at: datetime


def _task_columns(tasks: Sequence[TaskState]) -> dict[str, list[object]]:
    return {
        "id": [t.id for t in tasks],
        "project_id": [t.project_id for t in tasks],
        "title": [t.title for t in tasks],
        "description": [t.description for t in tasks],
        "status": [t.status.value for t in tasks],
        "priority": [t.priority.value for t in tasks],
        "deadline": [t.deadline for t in tasks],
        "assignee_id": [t.assignee_id for t in tasks],
        "reviewer_id": [t.reviewer_id for t in tasks],
        "created_by": [t.created_by for t in tasks],
        "version": [t.version for t in tasks],
        "created_at": [t.created_at for t in tasks],
        "updated_at": [t.updated_at for t in tasks],
        "completed_at": [t.completed_at for t in tasks],
        "deleted_at": [t.deleted_at for t in tasks],
    }


class TaskRepository:
    """Batch SQL for applying task commands inside the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> TaskRepository:
        return cls(session)

    async def claim_inbox(self, consumer: str, rows: Sequence[InboxRow]) -> set[uuid.UUID]:
        """Record message ids in the inbox; returns those not seen before (the rest are
        duplicates). A concurrent claimer of the same id blocks here until it commits."""
        if not rows:
            return set()
        result = await self.session.execute(
            _CLAIM_INBOX,
            {
                "consumer": consumer,
                "ids": [r.command_id for r in rows],
                "topics": [r.topic for r in rows],
                "partitions": [r.partition for r in rows],
                "offsets": [r.offset for r in rows],
            },
        )
        return set(result.scalars().all())

    async def lock_tasks(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, TaskState]:
        """Load (and lock until commit) the tasks with these ids that exist."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        result = await self.session.execute(_LOCK_TASKS, {"ids": wanted})
        tasks: dict[uuid.UUID, TaskState] = {}
        for row in result:
            task = TaskState(*row)
            task.status = TaskStatus(task.status)
            task.priority = TaskPriority(task.priority)
            tasks[task.id] = task
        return tasks

    async def load_access(self, pairs: Iterable[tuple[uuid.UUID, uuid.UUID]]) -> Access:
        wanted = list(set(pairs))
        if not wanted:
            return Access({})
        result = await self.session.execute(
            _ROLES, {"projects": [p for p, _ in wanted], "users": [u for _, u in wanted]}
        )
        return Access({(p, u): ProjectRole(role) for p, u, role in result})

    async def insert_tasks(self, tasks: Sequence[TaskState]) -> set[uuid.UUID]:
        """Insert new tasks; returns the ids inserted (an id that exists already is skipped)."""
        if not tasks:
            return set()
        result = await self.session.execute(_INSERT_TASKS, _task_columns(tasks))
        return set(result.scalars().all())

    async def update_tasks(self, tasks: Sequence[TaskState]) -> None:
        if tasks:
            await self.session.execute(_UPDATE_TASKS, _task_columns(tasks))

    async def insert_audit(self, rows: Sequence[AuditRow]) -> None:
        if not rows:
            return
        await self.session.execute(
            _INSERT_TASK_EVENTS,
            {
                "task_ids": [r.task_id for r in rows],
                "project_ids": [r.project_id for r in rows],
                "command_ids": [r.command_id for r in rows],
                "actor_ids": [r.actor_id for r in rows],
                "types": [r.event_type for r in rows],
                "befores": [
                    _json.encode(r.before.snapshot()).decode() if r.before else None for r in rows
                ],
                "afters": [_json.encode(r.after.snapshot()).decode() for r in rows],
                "occurred": [r.occurred_at for r in rows],
            },
        )

    async def insert_reviews(self, reviews: Sequence[ReviewRecord], now: datetime) -> None:
        if not reviews:
            return
        await self.session.execute(
            _INSERT_REVIEWS,
            {
                "now": now,
                "ids": [r.id for r in reviews],
                "task_ids": [r.task_id for r in reviews],
                "reviewers": [r.reviewer_id for r in reviews],
                "verdicts": [r.verdict.value for r in reviews],
                "comments": [r.comment for r in reviews],
            },
        )

    async def insert_outbox(self, events: Sequence[DomainEvent]) -> None:
        """The same rows as ``OutboxRepository.add``, as one unnest statement: a multi-VALUES
        insert of a 500-command batch re-plans a differently shaped statement every time."""
        if not events:
            return
        await self.session.execute(
            _INSERT_OUTBOX,
            {
                "ids": [e.event_id for e in events],
                "types": [e.type for e in events],
                "aggregates": [e.aggregate_id for e in events],
                "payloads": [encode_event(e) for e in events],
                "traces": [e.trace_id for e in events],
            },
        )

    async def insert_statuses(self, rows: Sequence[StatusRow], now: datetime) -> None:
        if not rows:
            return
        await self.session.execute(
            _INSERT_STATUSES,
            {
                "now": now,
                "ids": [r.command_id for r in rows],
                "types": [r.command_type for r in rows],
                "task_ids": [r.task_id for r in rows],
                "actors": [r.actor_id for r in rows],
                "states": [r.state.value for r in rows],
                "reasons": [r.reason for r in rows],
                "accepted": [r.accepted_at for r in rows],
            },
        )

    async def notify_settled(self, command_ids: Sequence[uuid.UUID]) -> None:
        """pg_notify the settled ids; delivered to listeners only if the transaction commits."""
        if not command_ids:
            return
        ids = [str(c) for c in command_ids]
        chunks = [
            ",".join(ids[i : i + NOTIFY_IDS_PER_MESSAGE])
            for i in range(0, len(ids), NOTIFY_IDS_PER_MESSAGE)
        ]
        await self.session.execute(_NOTIFY, {"payloads": chunks})
