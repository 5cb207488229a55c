"""Write-side SQL of tasks: what the task-command applier runs in its transaction (every
statement handles a whole batch: arrays in, ``unnest`` in SQL, one round trip whatever the
batch size), the stream-derived project counters, and the overdue sweep's claim.

Read-side SQL (task pages, stats as read by the API) lives in ``read_repository.py``."""

# SQL text below interpolates module constants (column lists) only, never input.
# ruff: noqa: S608

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from operator import attrgetter

import msgspec
from sqlalchemy import RowMapping, text

from taskstream.command_status.records import COMMANDS_CHANNEL, NOTIFY_IDS_PER_MESSAGE
from taskstream.db import Repository
from taskstream.enums import CommandState, ProjectRole, TaskPriority, TaskStatus
from taskstream.tasks.rules import TASK_COLUMNS, Access, ReviewRecord, TaskState
from taskstream.tasks.stats import COUNTER_COLUMNS, StatsDelta

_json = msgspec.json.Encoder()

_TASK_COLUMNS = ", ".join(TASK_COLUMNS)
# the unnest cast of each column in the UPDATE, from the type of its TaskState field
_ARRAY_TYPES = {
    "uuid.UUID": "uuid",
    "str": "text",
    "TaskStatus": "text",
    "TaskPriority": "text",
    "int": "int",
    "datetime": "timestamptz",
}
_TASK_CASTS = ", ".join(
    f"CAST(:{f.name} AS {_ARRAY_TYPES[str(f.type).removesuffix(' | None')]}[])"
    for f in fields(TaskState)
)
_task_row = attrgetter(*TASK_COLUMNS)  # a TaskState as a tuple in TASK_COLUMNS order

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
    SELECT {", ".join(f"t.{c}" for c in TASK_COLUMNS)}
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
    FROM unnest({_TASK_CASTS})
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

# Overdue: open (not done/cancelled), not deleted, deadline passed. The one statement of the
# rule: counted when read (it changes with the clock, so no stored counter can stay right) and
# swept once per task into a ``task.overdue`` event.
OVERDUE_CONDITION = (
    "t.deleted_at IS NULL AND t.deadline < now() AND t.status NOT IN ('done', 'cancelled')"
)

_CLAIM_OVERDUE = text(
    f"""
    WITH due AS (
        SELECT id FROM tasks t
        WHERE {OVERDUE_CONDITION} AND t.overdue_notified_at IS NULL
        ORDER BY deadline
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE tasks t SET overdue_notified_at = now()
    FROM due WHERE t.id = due.id
    RETURNING t.id, t.project_id, t.title, t.status, t.assignee_id, t.reviewer_id, t.created_by,
              t.deadline
    """
)

_UPSERT_STATS = text(
    f"""
    INSERT INTO project_stats (project_id, {", ".join(COUNTER_COLUMNS)}, updated_at)
    SELECT p, {", ".join(f"d_{c}" for c in COUNTER_COLUMNS)}, :now
    FROM unnest(CAST(:projects AS uuid[]),
                {", ".join(f"CAST(:{c} AS int[])" for c in COUNTER_COLUMNS)})
      AS u(p, {", ".join(f"d_{c}" for c in COUNTER_COLUMNS)})
    ORDER BY p
    ON CONFLICT (project_id) DO UPDATE SET
      {", ".join(f"{c} = project_stats.{c} + excluded.{c}" for c in COUNTER_COLUMNS)},
      updated_at = excluded.updated_at
    """
)

_UPSERT_ACTIVITY = text(
    """
    INSERT INTO project_activity (project_id, minute, created, completed)
    SELECT p, m, c, d
    FROM unnest(CAST(:projects AS uuid[]), CAST(:minutes AS timestamptz[]),
                CAST(:created AS int[]), CAST(:completed AS int[])) AS u(p, m, c, d)
    ORDER BY p, m
    ON CONFLICT (project_id, minute) DO UPDATE SET
      created = project_activity.created + excluded.created,
      completed = project_activity.completed + excluded.completed
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
COMMAND_STATUS_COLUMNS = (
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


def _task_columns(tasks: Sequence[TaskState]) -> dict[str, list[object]]:
    rows = [_task_row(t) for t in tasks]
    return {column: [row[i] for row in rows] for i, column in enumerate(TASK_COLUMNS)}


class TaskRepository(Repository):
    """Batch SQL for applying task commands inside the caller's transaction.

    Rows that can only be new (tasks whose id was just checked, audit rows, outbox events and
    statuses of commands this transaction claimed in the inbox) are written with COPY on the
    session's own connection: same transaction, two to three times the rate of INSERT. A
    unique violation there (two creates racing for one task id) aborts the batch with an
    IntegrityError, which the consumer isolates and rejects.
    """

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
        # StrEnum status and priority are str to asyncpg
        await self.copy_rows("tasks", TASK_COLUMNS, [_task_row(t) for t in tasks])

    async def update_tasks(self, tasks: Sequence[TaskState]) -> None:
        if tasks:
            await self.session.execute(_UPDATE_TASKS, _task_columns(tasks))

    async def insert_audit(self, rows: Sequence[AuditRecord]) -> None:
        await self.copy_rows("task_events", AUDIT_COLUMNS, rows)

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

    async def insert_statuses(self, rows: Sequence[StatusRecord]) -> None:
        """Statuses of commands claimed in this transaction's inbox (so they are new)."""
        await self.copy_rows("command_statuses", COMMAND_STATUS_COLUMNS, rows)

    async def notify_settled(self, ids: Sequence[str]) -> None:
        """pg_notify the settled ids; delivered to listeners only if the transaction commits."""
        if not ids:
            return
        chunks = [
            ",".join(ids[i : i + NOTIFY_IDS_PER_MESSAGE])
            for i in range(0, len(ids), NOTIFY_IDS_PER_MESSAGE)
        ]
        await self.session.execute(_NOTIFY, {"payloads": chunks})

    async def add_stats(self, delta: StatsDelta, now: datetime) -> None:
        """Add a batch's counter deltas: one upsert for the counters, one for the activity."""
        projects = sorted(p for p, c in delta.counters.items() if any(c.values()))
        if projects:
            params: dict[str, object] = {"now": now, "projects": projects}
            for column in COUNTER_COLUMNS:
                params[column] = [delta.counters[p][column] for p in projects]
            await self.session.execute(_UPSERT_STATS, params)
        keys = sorted(delta.activity)
        if keys:
            await self.session.execute(
                _UPSERT_ACTIVITY,
                {
                    "projects": [p for p, _ in keys],
                    "minutes": [m for _, m in keys],
                    "created": [delta.activity[k][0] for k in keys],
                    "completed": [delta.activity[k][1] for k in keys],
                },
            )

    async def claim_overdue(self, limit: int) -> Sequence[RowMapping]:
        """Mark up to ``limit`` overdue tasks not marked before as notified (the once-only
        marker) and return them; rows another sweeper holds are skipped."""
        return (await self.session.execute(_CLAIM_OVERDUE, {"limit": limit})).mappings().all()
