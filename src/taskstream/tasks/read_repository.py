"""Read-side SQL of tasks for the API: tasks, pages and project stats as the consumer wrote
them (the write side is ``repository.py``)."""

# SQL text below interpolates module constants (column lists, the overdue rule) only, never input.
# ruff: noqa: S608

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    DateTime,
    Row,
    func,
    literal,
    literal_column,
    select,
    text,
    tuple_,
)
from sqlalchemy.orm import QueryableAttribute, aliased

from taskstream.db import Repository
from taskstream.projects.models import Project, ProjectMember
from taskstream.tasks.listing import Position, TaskFilter, TaskSort
from taskstream.tasks.models import DEADLINE_SORT_KEY, Task
from taskstream.tasks.repository import OVERDUE_CONDITION
from taskstream.tasks.search import SEARCH_CONFIG, SEARCH_DOCUMENT
from taskstream.tasks.stats import COUNTER_COLUMNS

# (project_id, created_by) of a task
TaskOwnership = Row[uuid.UUID, uuid.UUID]

# Lists read tasks as "t", the alias the shared SQL conditions (OVERDUE_CONDITION) are written for.
_t = aliased(Task, name="t")
_INFINITY: ColumnElement[datetime] = literal_column("'infinity'::timestamp with time zone")
_SEARCH_CONFIG: ColumnElement[str] = literal_column(f"'{SEARCH_CONFIG}'::regconfig")
_SEARCH_DOCUMENT: ColumnElement[str] = literal_column(SEARCH_DOCUMENT)
_Column = ColumnElement[Any] | QueryableAttribute[Any]
_SORT_COLUMNS: dict[str, _Column] = {
    "createdAt": _t.created_at,
    "updatedAt": _t.updated_at,
    "deadline": literal_column(DEADLINE_SORT_KEY, DateTime(timezone=True)),
    "priority": _t.priority,
}

_COUNT_OVERDUE = (
    f"SELECT count(*) FROM tasks t WHERE t.project_id = :project AND {OVERDUE_CONDITION}"
)

_READ_STATS = text(
    f"""
    SELECT {", ".join(COUNTER_COLUMNS)}, s.updated_at, ({_COUNT_OVERDUE}) AS overdue
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


@dataclass(frozen=True, slots=True)
class ProjectStatsRow:
    """A project's counters (zero before its first task), overdue count and recent activity."""

    counters: dict[str, int]
    overdue: int
    updated_at: datetime | None
    activity: list[tuple[datetime, int, int]]


def _conditions(filters: TaskFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    equal: tuple[tuple[_Column, object], ...] = (
        (_t.project_id, filters.project_id),
        (_t.status, filters.status),
        (_t.assignee_id, filters.assignee_id),
        (_t.priority, filters.priority),
        (_t.created_by, filters.created_by),
        (_t.reviewer_id, filters.reviewer_id),
    )
    conditions += [column == value for column, value in equal if value is not None]
    if filters.due_before is not None:
        conditions.append(_t.deadline < filters.due_before)
    if filters.updated_since is not None:
        conditions.append(_t.updated_at >= filters.updated_since)
    if filters.overdue:
        conditions.append(literal_column(f"({OVERDUE_CONDITION})", Boolean))
    if (search := filters.search) is not None:
        query: ColumnElement[Any] = func.websearch_to_tsquery(_SEARCH_CONFIG, search.words)
        if search.prefixes is not None:
            query = query.op("&&")(func.to_tsquery(_SEARCH_CONFIG, search.prefixes))
        conditions.append(_SEARCH_DOCUMENT.op("@@", return_type=Boolean)(query))
    return conditions


def _sort_bound(sort: TaskSort, after: Position) -> ColumnElement[object]:
    if sort.key == "deadline":
        return func.coalesce(literal(after.value, DateTime(timezone=True)), _INFINITY)
    return literal(after.value, _SORT_COLUMNS[sort.key].type)


class TaskReadRepository(Repository):
    async def get(self, task_id: uuid.UUID) -> Task | None:
        stmt = select(Task).where(Task.id == task_id, Task.deleted_at.is_(None))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def ownership(self, task_id: uuid.UUID) -> TaskOwnership | None:
        """(project_id, created_by) of a live task."""
        stmt = select(Task.project_id, Task.created_by).where(
            Task.id == task_id, Task.deleted_at.is_(None)
        )
        return (await self.session.execute(stmt)).first()

    async def is_deleted(self, task_id: uuid.UUID) -> bool:
        """True when the task was stored and has since been deleted."""
        stmt = select(Task.id).where(Task.id == task_id, Task.deleted_at.is_not(None))
        return (await self.session.execute(stmt)).first() is not None

    async def page(
        self,
        filters: TaskFilter,
        *,
        member_id: uuid.UUID | None,
        sort: TaskSort,
        after: Position | None,
        limit: int,
    ) -> Sequence[Task]:
        """Tasks matching ``filters`` in ``sort`` order after the cursor position;
        ``member_id`` restricts to that user's projects (None: an admin, everything)."""
        stmt = select(_t).where(_t.deleted_at.is_(None), *_conditions(filters))
        if member_id is not None:
            mine = (
                select(ProjectMember.project_id)
                .join(Project, Project.id == ProjectMember.project_id)
                .where(ProjectMember.user_id == member_id, Project.deleted_at.is_(None))
            )
            stmt = stmt.where(_t.project_id.in_(mine))
        else:
            # an admin sees every project but the soft-deleted ones (few: purged after the grace)
            deleted = select(Project.id).where(Project.deleted_at.is_not(None))
            stmt = stmt.where(_t.project_id.not_in(deleted))
        key = _SORT_COLUMNS[sort.key]
        if after is not None:
            position = tuple_(key, _t.id)
            bound = tuple_(_sort_bound(sort, after), literal(after.task_id, _t.id.type))
            stmt = stmt.where(position < bound if sort.descending else position > bound)
        if sort.descending:
            stmt = stmt.order_by(key.desc(), _t.id.desc())
        else:
            stmt = stmt.order_by(key, _t.id)
        return (await self.session.execute(stmt.limit(limit))).scalars().all()

    async def count_overdue(self, project_id: uuid.UUID) -> int:
        """Open tasks of the project whose deadline has passed, as of now."""
        result = await self.session.execute(text(_COUNT_OVERDUE), {"project": project_id})
        return int(result.scalar_one())

    async def project_stats(self, project_id: uuid.UUID, since: datetime) -> ProjectStatsRow | None:
        """Counters of one project plus its per-minute activity since ``since``; None when
        the project does not exist."""
        row = (await self.session.execute(_READ_STATS, {"project": project_id})).one_or_none()
        if row is None:
            return None
        *counters, updated_at, overdue = row
        rows = await self.session.execute(_READ_ACTIVITY, {"project": project_id, "since": since})
        return ProjectStatsRow(
            counters={c: int(v or 0) for c, v in zip(COUNTER_COLUMNS, counters, strict=True)},
            overdue=int(overdue or 0),
            updated_at=updated_at,
            activity=[(m, c, d) for m, c, d in rows],
        )
