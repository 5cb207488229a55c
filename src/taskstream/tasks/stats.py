"""Stream-derived project counters: kept in the apply transaction, read by the stats endpoint.

Status counters and per-minute created/completed counts change only with commands, so the
consumer adds each batch's deltas (one upsert per table). ``overdue`` changes with the clock
rather than with commands, so it is counted when read, from the tasks themselves.
"""

# SQL text below interpolates module constants (column lists) only, never input.
# ruff: noqa: S608

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from datetime import datetime

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.enums import TaskStatus
from taskstream.errors import NotFoundError
from taskstream.tasks.rules import TaskState

STATUS_COLUMNS = tuple(s.value for s in TaskStatus)
COUNTER_COLUMNS = (*STATUS_COLUMNS, "deleted")

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

_READ_STATS = text(
    f"""
    SELECT {", ".join(COUNTER_COLUMNS)},
      (SELECT count(*) FROM tasks t
        WHERE t.project_id = :project AND t.deleted_at IS NULL AND t.deadline < now()
          AND t.status IN ('todo', 'in_progress', 'in_review')) AS overdue
    FROM projects p LEFT JOIN project_stats s ON s.project_id = p.id
    WHERE p.id = :project
    """
)

_READ_ACTIVITY = text(
    """
    SELECT minute, created, completed FROM project_activity
    WHERE project_id = :project AND minute >= :since ORDER BY minute
    """
)


class StatsDelta:
    """Counter changes of one batch, aggregated per project and per minute in memory."""

    def __init__(self) -> None:
        self.counters: defaultdict[uuid.UUID, Counter[str]] = defaultdict(Counter)
        self.activity: defaultdict[tuple[uuid.UUID, datetime], Counter[str]] = defaultdict(Counter)

    def record(self, before: TaskState | None, after: TaskState, at: datetime) -> None:
        """Account for one task going from ``before`` to ``after`` (None: newly created)."""
        counters = self.counters[after.project_id]
        if before is not None and before.deleted_at is None:
            counters[before.status.value] -= 1
        if after.deleted_at is None:
            counters[after.status.value] += 1
        elif before is not None and before.deleted_at is None:
            counters["deleted"] += 1
        minute = at.replace(second=0, microsecond=0)
        if before is None:
            self.activity[(after.project_id, minute)]["created"] += 1
        if after.status is TaskStatus.DONE and (
            before is None or before.status is not after.status
        ):
            self.activity[(after.project_id, minute)]["completed"] += 1


async def apply_stats_delta(session: AsyncSession, delta: StatsDelta, now: datetime) -> None:
    """Add a batch's deltas: one upsert for the counters, one for the per-minute activity."""
    projects = sorted(p for p, c in delta.counters.items() if any(c.values()))
    if projects:
        params: dict[str, object] = {"now": now, "projects": projects}
        for column in COUNTER_COLUMNS:
            params[column] = [delta.counters[p][column] for p in projects]
        await session.execute(_UPSERT_STATS, params)
    keys = sorted(delta.activity)
    if keys:
        await session.execute(
            _UPSERT_ACTIVITY,
            {
                "projects": [p for p, _ in keys],
                "minutes": [m for _, m in keys],
                "created": [delta.activity[k]["created"] for k in keys],
                "completed": [delta.activity[k]["completed"] for k in keys],
            },
        )


class MinuteActivity(msgspec.Struct, rename="camel"):
    minute: datetime
    created: int
    completed: int


class ProjectStatsView(msgspec.Struct, rename="camel"):
    project_id: uuid.UUID
    by_status: dict[str, int]
    deleted: int
    overdue: int
    activity: list[MinuteActivity]


async def read_project_stats(
    session: AsyncSession, project_id: uuid.UUID, since: datetime
) -> ProjectStatsView:
    """Counters of one project plus its per-minute activity since ``since``.

    Authorisation (membership) is the caller's job; raises NotFoundError for no project."""
    row = (await session.execute(_READ_STATS, {"project": project_id})).one_or_none()
    if row is None:
        raise NotFoundError("project not found")
    values = dict(zip((*COUNTER_COLUMNS, "overdue"), row, strict=True))
    rows = await session.execute(_READ_ACTIVITY, {"project": project_id, "since": since})
    return ProjectStatsView(
        project_id=project_id,
        by_status={s: int(values[s] or 0) for s in STATUS_COLUMNS},
        deleted=int(values["deleted"] or 0),
        overdue=int(values["overdue"] or 0),
        activity=[MinuteActivity(m, c, d) for m, c, d in rows],
    )
