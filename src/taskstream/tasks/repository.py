"""All SQL the task-command applier runs. Every statement handles a whole batch: arrays in,
``unnest`` in SQL, one round trip per statement whatever the batch size."""

# SQL text below interpolates module constants (column lists) only, never input.
# ruff: noqa: S608

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

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

_TASK_COLUMN_NAMES = (
    "id",
    "project_id",
    "title",
    "description",
    "status",
    "priority",
    "deadline",
    "assignee_id",
    "reviewer_id",
    "created_by",
    "version",
    "created_at",
    "updated_at",
    "completed_at",
    "deleted_at",
)
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

# One primary-key probe per id, in id order (the lock order): a LATERAL subquery keyed by the
# outer id cannot be planned as a seq scan. A plain join was planned as a hash join over a seq
# scan of all tasks whenever the statistics lagged the table's growth (25 ms per batch at 100k
# tasks, most of it for creates that find nothing); `id = ANY(...)` has the same risk.
_LOCK_TASKS = text(
    f"""
    SELECT {", ".join(f"t.{c}" for c in _TASK_COLUMN_NAMES)}
    FROM (SELECT DISTINCT id FROM unnest(CAST(:ids AS uuid[])) AS x(id) ORDER BY id) AS u
    CROSS JOIN LATERAL (SELECT * FROM tasks WHERE tasks.id = u.id FOR UPDATE) AS t
    ORDER BY u.id
    """
)

_ROLES = text(
    """
    SELECT m.project_id, m.user_id, m.role::text
    FROM project_members AS m
    JOIN unnest(CAST(:projects AS uuid[]), CAST(:users AS uuid[])) AS u(p, usr)
      ON m.project_id = u.p AND m.user_id = u.usr
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

_INSERT_REVIEWS = text(
    """
    INSERT INTO task_reviews (id, task_id, reviewer_id, verdict, comment, created_at)
    SELECT i, t, r, v::review_verdict, c, :now
    FROM unnest(CAST(:ids AS uuid[]), CAST(:task_ids AS uuid[]), CAST(:reviewers AS uuid[]),
                CAST(:verdicts AS text[]), CAST(:comments AS text[])) AS u(i, t, r, v, c)
    ON CONFLICT (id) DO NOTHING
    """
)

_NOTIFY = text(
    f"SELECT count(pg_notify('{COMMANDS_CHANNEL}', p)) FROM unnest(CAST(:payloads AS text[])) p"
)


# Row shapes of the COPY writes. The applier builds these tuples directly (one per command,
# no intermediate objects): the apply loop runs once per command, so every allocation counts.
AUDIT_COLUMNS = (
    "task_id",
    "project_id",
    "command_id",
    "actor_id",
    "event_type",
    "before",
    "after",
    "occurred_at",
)
OUTBOX_COLUMNS = ("event_id", "event_type", "aggregate_id", "payload", "trace_id")
STATUS_COLUMNS = (
    "command_id",
    "command_type",
    "task_id",
    "actor_id",
    "status",
    "reason",
    "accepted_at",
    "applied_at",
)
AuditRecord = tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID, str, str | None, str, datetime]
OutboxRecord = tuple[uuid.UUID, str, uuid.UUID, bytes, str | None]
StatusRecord = tuple[
    uuid.UUID, str, uuid.UUID, uuid.UUID, CommandState, str | None, datetime, datetime
]


def audit_record(
    command_id: uuid.UUID,
    *,
    actor_id: uuid.UUID,
    event_type: str,
    before: TaskState | None,
    after: TaskState,
    occurred_at: datetime,
) -> AuditRecord:
    """A task_events row: who did what, with the task before and after (JSON for jsonb)."""
    return (
        after.id,
        after.project_id,
        command_id,
        actor_id,
        event_type,
        None if before is None else _json.encode(before.snapshot()).decode(),
        _json.encode(after.snapshot()).decode(),
        occurred_at,
    )


def outbox_record(event: DomainEvent) -> OutboxRecord:
    """The row ``OutboxRepository.add`` writes for ``event``."""
    return (event.event_id, event.type, event.aggregate_id, encode_event(event), event.trace_id)


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
    """Batch SQL for applying task commands inside the caller's transaction.

    Rows that can only be new (tasks whose id was just checked, audit rows, outbox events and
    statuses of commands this transaction claimed in the inbox) are written with COPY on the
    session's own connection: same transaction, two to three times the rate of INSERT. A
    unique violation there (two creates racing for one task id) aborts the batch with an
    IntegrityError, which the consumer isolates and rejects.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _copy(self, table: str, columns: Sequence[str], records: Sequence[Any]) -> None:
        if not records:
            return
        connection = await self.session.connection()  # already inside the transaction
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.copy_records_to_table(table, records=records, columns=columns)

    @classmethod
    def from_session(cls, session: AsyncSession) -> TaskRepository:
        return cls(session)

    async def claim_inbox(
        self,
        consumer: str,
        ids: Sequence[uuid.UUID],
        topics: Sequence[str | None],
        partitions: Sequence[int | None],
        offsets: Sequence[int | None],
    ) -> set[uuid.UUID]:
        """Record message ids (with where they came from) in the inbox; returns those not seen
        before (the rest are duplicates). A concurrent claimer of an id blocks until it commits."""
        if not ids:
            return set()
        result = await self.session.execute(
            _CLAIM_INBOX,
            {
                "consumer": consumer,
                "ids": ids,
                "topics": topics,
                "partitions": partitions,
                "offsets": offsets,
            },
        )
        return set(result.scalars().all())

    async def lock_tasks(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, TaskState]:
        """Load (and lock until commit) the tasks with these ids that exist."""
        wanted = list(set(ids))  # ORDER BY id in SQL fixes the lock order
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

    async def insert_tasks(self, tasks: Sequence[TaskState]) -> None:
        """Insert new tasks (ids checked absent by ``lock_tasks`` in this transaction)."""
        await self._copy(
            "tasks",
            _TASK_COLUMN_NAMES,
            [
                (
                    t.id,
                    t.project_id,
                    t.title,
                    t.description,
                    t.status,  # StrEnum: a str to asyncpg
                    t.priority,
                    t.deadline,
                    t.assignee_id,
                    t.reviewer_id,
                    t.created_by,
                    t.version,
                    t.created_at,
                    t.updated_at,
                    t.completed_at,
                    t.deleted_at,
                )
                for t in tasks
            ],
        )

    async def update_tasks(self, tasks: Sequence[TaskState]) -> None:
        if tasks:
            await self.session.execute(_UPDATE_TASKS, _task_columns(tasks))

    async def insert_audit(self, rows: Sequence[AuditRecord]) -> None:
        await self._copy("task_events", AUDIT_COLUMNS, rows)

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

    async def insert_outbox(self, rows: Sequence[OutboxRecord]) -> None:
        """The rows ``OutboxRepository.add`` writes, by COPY: event ids derive from command ids
        claimed in this transaction's inbox, so they cannot exist yet."""
        await self._copy("outbox", OUTBOX_COLUMNS, rows)

    async def insert_statuses(self, rows: Sequence[StatusRecord]) -> None:
        """Statuses of commands claimed in this transaction's inbox (so they are new)."""
        await self._copy("command_statuses", STATUS_COLUMNS, rows)

    async def notify_settled(self, ids: Sequence[str]) -> None:
        """pg_notify the settled ids; delivered to listeners only if the transaction commits."""
        if not ids:
            return
        chunks = [
            ",".join(ids[i : i + NOTIFY_IDS_PER_MESSAGE])
            for i in range(0, len(ids), NOTIFY_IDS_PER_MESSAGE)
        ]
        await self.session.execute(_NOTIFY, {"payloads": chunks})
