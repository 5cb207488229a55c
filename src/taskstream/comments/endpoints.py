"""Comment routes: write, edit and delete comments, and read a task's thread (comments and
review comments together). Every handler calls ``service.py`` in one line."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from taskstream.comments import service
from taskstream.comments.repository import ThreadItem
from taskstream.comments.schemas import (
    CommentPage,
    CommentResponse,
    CreateCommentRequest,
    UpdateCommentRequest,
)
from taskstream.fields import CURSOR_QUERY, Cursor
from taskstream.principal import Principal
from taskstream.problems import problem_responses
from taskstream.web.cursors import decode_position, encode_position
from taskstream.web.idempotency import derived_id, idempotency_key
from taskstream.web.pagination import DEFAULT_PAGE_SIZE, PageLimit, page_size


def _response(item: ThreadItem) -> CommentResponse:
    return CommentResponse(
        id=item.id,
        task_id=item.task_id,
        kind="review" if item.kind == "review" else "comment",
        author_id=item.author_id,
        author_name=item.author_name,
        body=item.body,
        verdict=item.verdict,
        created_at=item.created_at,
        edited_at=item.edited_at,
    )


def _new_comment_id(request: Request[Any, Any, Any]) -> uuid.UUID:
    """Derived from the Idempotency-Key when given (a retry cannot comment twice), else a
    time-ordered random id."""
    key = idempotency_key(request.scope)
    return derived_id(key, 0, "comment") if key else uuid7()


class TaskCommentsController(Controller):
    path = "/tasks/{task_id:uuid}/comments"
    tags = ["comments"]

    @post(
        "/",
        operation_id="addTaskComment",
        status_code=HTTP_201_CREATED,
        responses=problem_responses(403),
    )
    async def add_comment(
        self,
        *,
        task_id: FromPath[uuid.UUID],
        data: JSONBody[CreateCommentRequest],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        request: Request[Any, Any, Any],
        state: State,
        trace_id: NamedDependency[str],
    ) -> CommentResponse:
        """Comment on a task (member role or above); `<@userId>` mentions notify members."""
        item = await service.add_comment(
            db_session,
            current_user,
            task_id,
            data.body,
            comment_id=_new_comment_id(request),
            max_mentions=state.settings.comments.max_mentions,
            trace_id=trace_id,
        )
        return _response(item)

    @get("/", operation_id="listTaskComments", responses=problem_responses())
    async def list_comments(
        self,
        *,
        task_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        state: State,
        limit: PageLimit = DEFAULT_PAGE_SIZE,
        cursor: Annotated[Cursor | None, QueryParameter(**CURSOR_QUERY)] = None,
    ) -> CommentPage:
        """A task's comments and review comments, oldest first, keyset-paginated."""
        items, more = await service.list_comments(
            db_session,
            current_user,
            task_id,
            after=decode_position(cursor),
            limit=page_size(limit, state.settings.api),
        )
        return CommentPage(
            items=[_response(i) for i in items],
            next_cursor=encode_position(items[-1].created_at, items[-1].id) if more else None,
        )


class CommentController(Controller):
    path = "/comments"
    tags = ["comments"]

    @patch(
        "/{comment_id:uuid}",
        operation_id="updateComment",
        responses=problem_responses(403),
    )
    async def update_comment(
        self,
        *,
        comment_id: FromPath[uuid.UUID],
        data: JSONBody[UpdateCommentRequest],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        state: State,
        trace_id: NamedDependency[str],
    ) -> CommentResponse:
        """Replace the body of one's own comment (sets `editedAt`)."""
        item = await service.edit_comment(
            db_session,
            current_user,
            comment_id,
            data.body,
            max_mentions=state.settings.comments.max_mentions,
            trace_id=trace_id,
        )
        return _response(item)

    @delete(
        "/{comment_id:uuid}",
        operation_id="deleteComment",
        status_code=HTTP_204_NO_CONTENT,
        responses=problem_responses(403),
    )
    async def delete_comment(
        self,
        *,
        comment_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        trace_id: NamedDependency[str],
    ) -> None:
        """Delete a comment (its author, or a maintainer or owner of the project)."""
        await service.delete_comment(db_session, current_user, comment_id, trace_id=trace_id)


CONTROLLERS = [TaskCommentsController, CommentController]
