"""Task reads from PostgreSQL: one task, and filtered keyset-paginated lists."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from litestar import Controller, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import FromPath, FromQuery, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.enums import TaskPriority, TaskStatus
from taskstream.errors import FieldError, ValidationFailedError
from taskstream.fields import (
    CURSOR_QUERY,
    DATETIME_DESCRIPTION,
    NO_NUL,
    AwareDatetime,
    Cursor,
    storable_datetime_error,
)
from taskstream.principal import Principal
from taskstream.problems import problem_responses
from taskstream.tasks import service
from taskstream.tasks.listing import TaskFilter, TaskSort, decode_cursor, encode_cursor
from taskstream.tasks.models import Task
from taskstream.tasks.schemas import (
    ActivityPoint,
    ProjectStatsResponse,
    StatusCounts,
    TaskPage,
    TaskResponse,
)
from taskstream.tasks.search import MAX_QUERY_LENGTH, parse_search
from taskstream.tasks.stats import TASK_STATUSES
from taskstream.web.pagination import DEFAULT_PAGE_SIZE, PageLimit, page_size

ACTIVITY_MINUTES = 60
Q_DESCRIPTION = (
    "Full-text search over title and description (whole words, any case): words are all "
    'required, "a phrase" in order, `or` between words for either, `-word` excludes, `word*` '
    "matches words starting with it."
)


def _task(task: Task) -> TaskResponse:
    return TaskResponse(**{name: getattr(task, name) for name in TaskResponse.__struct_fields__})


def _storable(name: str, value: datetime | None) -> datetime | None:
    # Query parameters are not structs, so the datetime rule of RequestStruct is applied here.
    if value is not None and (error := storable_datetime_error(value)) is not None:
        raise ValidationFailedError([FieldError(name, error)])
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
        created_by: Annotated[uuid.UUID | None, QueryParameter(name="createdBy")] = None,
        reviewer_id: Annotated[uuid.UUID | None, QueryParameter(name="reviewerId")] = None,
        updated_since: Annotated[
            AwareDatetime | None,
            QueryParameter(name="updatedSince", description=DATETIME_DESCRIPTION),
        ] = None,
        overdue: Annotated[
            bool,
            QueryParameter(description="true: only open tasks whose deadline has passed"),
        ] = False,
        q: Annotated[
            str | None,
            QueryParameter(
                max_length=MAX_QUERY_LENGTH,
                pattern=NO_NUL,
                description=Q_DESCRIPTION,
                examples=[Example(value='login "time out" -android deplo*')],
            ),
        ] = None,
        sort: Annotated[
            TaskSort,
            QueryParameter(description="Order; `-` for descending. Ties: by task id."),
        ] = TaskSort.CREATED_AT,
        limit: PageLimit = DEFAULT_PAGE_SIZE,
        cursor: Annotated[Cursor | None, QueryParameter(**CURSOR_QUERY)] = None,
    ) -> TaskPage:
        """Tasks in the caller's projects, filtered and searched, sorted, keyset-paginated."""
        filters = TaskFilter(
            project_id=project_id,
            status=status,
            assignee_id=assignee_id,
            priority=priority,
            due_before=_storable("dueBefore", due_before),
            created_by=created_by,
            reviewer_id=reviewer_id,
            updated_since=_storable("updatedSince", updated_since),
            overdue=overdue,
            search=parse_search(q),
        )
        items, more = await service.list_tasks(
            db_session,
            current_user,
            filters,
            sort=sort,
            after=decode_cursor(cursor, sort, filters) if cursor else None,
            limit=page_size(limit, state.settings.api),
        )
        next_cursor = encode_cursor(items[-1], sort, filters) if more else None
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
