"""History routes: ``/tasks/{id}/events`` (a task's audit trail) and ``/projects/{id}/activity``
(a project's feed). Each path has its own controller; the task and project controllers keep
theirs (``ProjectStatsController`` serves ``/projects/{id}/stats``)."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated

from litestar import Controller, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.comments.service import AUDIT_TYPES as COMMENT_AUDIT_TYPES
from taskstream.errors import FieldError, ValidationFailedError
from taskstream.fields import CURSOR_QUERY, Cursor
from taskstream.history import service
from taskstream.history.repository import EventRow
from taskstream.history.schemas import HistoryEntry, HistoryPage
from taskstream.principal import Principal
from taskstream.problems import problem_responses
from taskstream.web.pagination import DEFAULT_PAGE_SIZE, PageLimit, page_size

# task_events ids are a bigint identity
_MAX_ID = 2**63 - 1


def encode_cursor(row: EventRow) -> str:
    return base64.urlsafe_b64encode(str(row.id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The event id a cursor names; 422 for anything ``encode_cursor`` cannot make."""
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        if not text.isdigit():
            raise ValueError(text)
        value = int(text)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailedError([FieldError("cursor", "is not a valid cursor")]) from exc
    if value > _MAX_ID:
        raise ValidationFailedError([FieldError("cursor", "is not a valid cursor")])
    return value


def _entry(row: EventRow) -> HistoryEntry:
    return HistoryEntry(
        id=row.id,
        task_id=row.task_id,
        task_title=row.task_title,
        project_id=row.project_id,
        type=row.type,
        actor_id=row.actor_id,
        actor_name=row.actor_name,
        occurred_at=row.occurred_at,
        before=row.before,
        after=row.after,
        command_id=None if row.type in COMMENT_AUDIT_TYPES else row.command_id,
    )


def _page(rows: list[EventRow] | tuple[EventRow, ...], more: bool) -> HistoryPage:
    return HistoryPage(
        items=[_entry(r) for r in rows], next_cursor=encode_cursor(rows[-1]) if more else None
    )


class TaskEventsController(Controller):
    path = "/tasks/{task_id:uuid}/events"
    tags = ["history"]

    @get("/", operation_id="listTaskEvents", responses=problem_responses())
    async def list_task_events(
        self,
        *,
        task_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        state: State,
        limit: PageLimit = DEFAULT_PAGE_SIZE,
        cursor: Annotated[Cursor | None, QueryParameter(**CURSOR_QUERY)] = None,
    ) -> HistoryPage:
        """A task's audit trail (who, what, when, before/after), oldest first."""
        rows, more = await service.task_events(
            db_session,
            current_user,
            task_id,
            after=decode_cursor(cursor),
            limit=page_size(limit, state.settings.api),
        )
        return _page(list(rows), more)


class ProjectActivityController(Controller):
    path = "/projects/{project_id:uuid}/activity"
    tags = ["history"]

    @get("/", operation_id="listProjectActivity", responses=problem_responses())
    async def list_project_activity(
        self,
        *,
        project_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        state: State,
        limit: PageLimit = DEFAULT_PAGE_SIZE,
        cursor: Annotated[Cursor | None, QueryParameter(**CURSOR_QUERY)] = None,
    ) -> HistoryPage:
        """Everything that happened to the project's tasks, comments included, newest first."""
        rows, more = await service.project_activity(
            db_session,
            current_user,
            project_id,
            before=decode_cursor(cursor),
            limit=page_size(limit, state.settings.api),
        )
        return _page(list(rows), more)


CONTROLLERS = [TaskEventsController, ProjectActivityController]
