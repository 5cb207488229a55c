"""Stream-derived project counters: kept in the apply transaction, read by the stats endpoint.

Status counters and per-minute created/completed counts change only with commands, so the
consumer adds each batch's deltas (one upsert per table). ``overdue`` changes with the clock
rather than with commands, so it is counted when read, from the tasks themselves.
"""

# SQL text below interpolates module constants (column lists) only, never input.
# ruff: noqa: S608

from __future__ import annotations

import uuid
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

# Overdue = open (not done/cancelled), not deleted, deadline passed. Counted when read: it
# changes with the clock and with completion, not only with commands, so no stored counter
# can stay right (project_stats has none).
_OVERDUE = """
    SELECT count(*) FROM tasks t
    WHERE t.project_id = :project AND t.deleted_at IS NULL AND t.deadline < now()
      AND t.status IN ('todo', 'in_progress', 'in_review')
"""
_COUNT_OVERDUE = text(_OVERDUE)

_READ_STATS = text(
    f"""
    SELECT {", ".join(COUNTER_COLUMNS)}, ({_OVERDUE}) AS overdue
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
    """Counter changes of one batch, aggregated per project and per minute in memory.

    Plain dicts rather than Counters: ``record`` runs once per applied command."""

    __slots__ = ("_at", "_minute", "activity", "counters")

    def __init__(self) -> None:
        self.counters: dict[uuid.UUID, dict[str, int]] = {}
        # (project, minute) -> [created, completed]
        self.activity: dict[tuple[uuid.UUID, datetime], list[int]] = {}
        self._at: datetime | None = None
        self._minute = datetime.min

    def record(self, before: TaskState | None, after: TaskState, at: datetime) -> None:
        """Account for one task going from ``before`` to ``after`` (None: newly created)."""
        counters = self.counters.get(after.project_id)
        if counters is None:
            counters = self.counters[after.project_id] = dict.fromkeys(COUNTER_COLUMNS, 0)
        was_live = before is not None and before.deleted_at is None
        if before is not None and was_live:
            counters[before.status] -= 1
        if after.deleted_at is None:
            counters[after.status] += 1
        elif was_live:
            counters["deleted"] += 1
        created = before is None
        completed = after.status is TaskStatus.DONE and (
            before is None or before.status is not after.status
        )
        if created or completed:
            if at is not self._at:  # one `now` per batch: truncate it once
                self._at, self._minute = at, at.replace(second=0, microsecond=0)
            key = (after.project_id, self._minute)
            counts = self.activity.get(key)
            if counts is None:
                counts = self.activity[key] = [0, 0]
            counts[0] += created
            counts[1] += completed


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
                "created": [delta.activity[k][0] for k in keys],
                "completed": [delta.activity[k][1] for k in keys],
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


async def count_overdue(session: AsyncSession, project_id: uuid.UUID) -> int:
    """Open tasks of the project whose deadline has passed, as of now."""
    return int((await session.execute(_COUNT_OVERDUE, {"project": project_id})).scalar_one())


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
