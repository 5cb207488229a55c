"""Task reads from PostgreSQL: one task, and filtered keyset-paginated lists."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.enums import TaskPriority, TaskStatus
from taskstream.errors import FieldError, ValidationFailedError
from taskstream.fields import (
    CURSOR_QUERY,
    DATETIME_DESCRIPTION,
    AwareDatetime,
    Cursor,
    storable_datetime_error,
)
from taskstream.principal import Principal
from taskstream.problems import problem_responses
from taskstream.tasks import service
from taskstream.tasks.models import Task
from taskstream.tasks.read_repository import TaskFilter
from taskstream.tasks.schemas import (
    ActivityPoint,
    ProjectStatsResponse,
    StatusCounts,
    TaskPage,
    TaskResponse,
)
from taskstream.tasks.stats import TASK_STATUSES
from taskstream.web.pagination import DEFAULT_PAGE_SIZE, PageLimit, page_size

ACTIVITY_MINUTES = 60


def _task(task: Task) -> TaskResponse:
    return TaskResponse(**{name: getattr(task, name) for name in TaskResponse.__struct_fields__})


def encode_cursor(task: Task) -> str:
    raw = msgspec.json.encode([task.created_at, task.id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (created_at, id) position a cursor names; 422 for anything ``encode_cursor`` could
    not have produced (a crafted cursor must not reach SQL with an unstorable datetime)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, task_id = msgspec.json.decode(raw, type=tuple[datetime, uuid.UUID])
    except (binascii.Error, ValueError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValidationFailedError([FieldError("cursor", "is not a valid cursor")]) from exc
    if storable_datetime_error(created_at) is not None:
        raise ValidationFailedError([FieldError("cursor", "is not a valid cursor")])
    return created_at, task_id


def _due_before(value: datetime | None) -> datetime | None:
    # Query parameters are not structs, so the datetime rule of RequestStruct is applied here.
    if value is not None and (error := storable_datetime_error(value)) is not None:
        raise ValidationFailedError([FieldError("dueBefore", error)])
    return value


class TaskReadRoutes(Controller):
    """The read half of ``/tasks``; ``TaskController`` inherits it so one controller owns the
    path (two controllers on one path would both register OPTIONS)."""

    path = "/tasks"
    tags = ["tasks"]

    @get("/", operation_id="listTasks", responses=problem_responses())
    async def list_tasks(
        self,
        *,
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        state: State,
        project_id: Annotated[uuid.UUID | None, QueryParameter(name="projectId")] = None,
        status: FromQuery[TaskStatus | None] = None,
        assignee_id: Annotated[uuid.UUID | None, QueryParameter(name="assigneeId")] = None,
        priority: FromQuery[TaskPriority | None] = None,
        due_before: Annotated[
            AwareDatetime | None,
            QueryParameter(name="dueBefore", description=DATETIME_DESCRIPTION),
        ] = None,
        limit: PageLimit = DEFAULT_PAGE_SIZE,
        cursor: Annotated[Cursor | None, QueryParameter(**CURSOR_QUERY)] = None,
    ) -> TaskPage:
        """Tasks in the caller's projects, filtered, oldest first, keyset-paginated."""
        filters = TaskFilter(project_id, status, assignee_id, priority, _due_before(due_before))
        items, more = await service.list_tasks(
            db_session,
            current_user,
            filters,
            after=decode_cursor(cursor) if cursor else None,
            limit=page_size(limit, state.settings.api),
        )
        next_cursor = encode_cursor(items[-1]) if more else None
        return TaskPage(items=[_task(t) for t in items], next_cursor=next_cursor)

    @get("/{task_id:uuid}", operation_id="getTask", responses=problem_responses())
    async def get_task(
        self,
        *,
        task_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
    ) -> TaskResponse:
        """One task, if the caller is a member of its project (404 otherwise)."""
        return _task(await service.get_task(db_session, current_user, task_id))


class ProjectStatsController(Controller):
    """``/projects/{id}/stats``: the stream-derived counters belong to tasks, so the route lives
    here and the projects package needs nothing from tasks."""

    path = "/projects/{project_id:uuid}/stats"
    tags = ["projects"]

    @get("/", operation_id="getProjectStats", responses=problem_responses())
    async def stats(
        self,
        *,
        project_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
    ) -> ProjectStatsResponse:
        """Task counts per status and the last hour's activity, as the consumer recorded them."""
        stats = await service.project_stats(db_session, current_user, project_id, ACTIVITY_MINUTES)
        counts = StatusCounts(**{s: stats.counters[s] for s in TASK_STATUSES})
        return ProjectStatsResponse(
            project_id=project_id,
            counts=counts,
            total=sum(stats.counters[s] for s in TASK_STATUSES),
            overdue=stats.overdue,
            deleted=stats.counters["deleted"],
            updated_at=stats.updated_at,
            activity=[
                ActivityPoint(minute=m, created=c, completed=d) for m, c, d in stats.activity
            ],
        )
