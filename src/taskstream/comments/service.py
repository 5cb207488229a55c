"""Comments on tasks: the rules of writing, editing, deleting and reading them.

Comments are direct PostgreSQL writes, not Kafka commands: they do not change the task's
state, so there is no order against other commands to keep, and the author must read the
comment back at once. Each write leaves, in its own transaction, an audit row in
``task_events`` (the task's history and the project's feed show it) and its domain events in
the outbox: ``task.commented`` (assignee, reviewer and creator hear of it), ``task.mentioned``
once per mentioned project member, ``task.comment_edited`` and ``task.comment_deleted``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.comments.mentions import mentioned_user_ids
from taskstream.comments.models import Comment
from taskstream.comments.repository import CommentRepository, TaskFacts, ThreadItem
from taskstream.enums import ProjectRole
from taskstream.errors import (
    ConflictError,
    FieldError,
    ForbiddenError,
    NotFoundError,
    ValidationFailedError,
)
from taskstream.messages import DomainEvent
from taskstream.outbox.ids import derived_event_id
from taskstream.outbox.repository import OutboxRepository
from taskstream.principal import Principal
from taskstream.projects.service import refuse_if_archived, require_project_role, role_at_least

COMMENTED: Final = "task.commented"
MENTIONED: Final = "task.mentioned"
EDITED: Final = "task.comment_edited"
DELETED: Final = "task.comment_deleted"
# The audit types a comment write leaves in task_events (history shows no command id for them).
AUDIT_TYPES: Final = frozenset({COMMENTED, EDITED, DELETED})


@dataclass(frozen=True, slots=True)
class _CommentWrite:
    """One write to a comment: the events it raises and the audit row it leaves, all in the
    caller's transaction."""

    session: AsyncSession
    principal: Principal
    task: TaskFacts
    comment_id: uuid.UUID
    now: datetime
    trace_id: str | None

    def event(self, event_type: str, event_id: uuid.UUID, **extra: Any) -> DomainEvent:
        """A comment event carrying the task's people, as every task event does."""
        task = self.task
        return DomainEvent(
            event_id=event_id,
            type=event_type,
            occurred_at=self.now,
            aggregate_id=task.id,
            actor_id=self.principal.user_id,
            project_id=task.project_id,
            trace_id=self.trace_id,
            data={
                "taskId": str(task.id),
                "projectId": str(task.project_id),
                "title": task.title,
                "status": task.status.value,
                "assigneeId": _str(task.assignee_id),
                "reviewerId": _str(task.reviewer_id),
                "createdBy": str(task.created_by),
                "authorId": str(self.principal.user_id),
                "commentId": str(self.comment_id),
                **extra,
            },
        )

    async def mentions(self, mentioned: list[uuid.UUID]) -> list[DomainEvent]:
        """A ``task.mentioned`` per mentioned current member other than the author; anyone
        else (a stranger, a random id, a former member) is ignored without a word. The id
        derives from (comment, user): a user hears of one comment's mention once."""
        repo = CommentRepository.from_session(self.session)
        members = await repo.current_members(self.task.project_id, mentioned)
        return [
            self.event(
                MENTIONED,
                derived_event_id(self.comment_id, MENTIONED, str(user_id)),
                userId=str(user_id),
            )
            for user_id in mentioned
            if user_id in members and user_id != self.principal.user_id
        ]

    async def record(
        self, events: list[DomainEvent], before: dict[str, Any] | None, after: dict[str, Any]
    ) -> None:
        """Write the audit row of ``events[0]`` (the write itself) and every event, then
        commit."""
        main = events[0]
        await CommentRepository.from_session(self.session).add_audit(
            task=self.task,
            cause_id=main.event_id,
            actor_id=self.principal.user_id,
            event_type=main.type,
            before=before,
            after=after,
            occurred_at=self.now,
        )
        await OutboxRepository.from_session(self.session).add(events)
        await self.session.commit()


async def add_comment(
    session: AsyncSession,
    principal: Principal,
    task_id: uuid.UUID,
    body: str,
    *,
    comment_id: uuid.UUID,
    max_mentions: int,
    trace_id: str | None = None,
) -> ThreadItem:
    """Comment on a live task (member role or above) and commit, with ``task.commented`` and
    a ``task.mentioned`` per mentioned member in the outbox. A repeated ``comment_id`` (a
    retried request: same author, same task) returns the comment it made; any other use of
    an existing id is a 409."""
    repo = CommentRepository.from_session(session)
    task = await _visible_task(session, principal, task_id, ProjectRole.MEMBER)
    await refuse_if_archived(session, task.project_id)
    mentioned = _mentions(body, max_mentions)
    write = _CommentWrite(session, principal, task, comment_id, datetime.now(UTC), trace_id)
    comment = Comment(
        id=comment_id,
        task_id=task.id,
        project_id=task.project_id,
        author_id=principal.user_id,
        body=body,
        created_at=write.now,
    )
    if not await repo.add(comment):
        existing = await repo.get_live(comment_id)
        mine = existing is not None and existing.author_id == principal.user_id
        if existing is None or not mine or existing.task_id != task.id:
            raise ConflictError("A comment with this id exists")
        return await _item(repo, existing)
    mentions = await write.mentions(mentioned)
    # the mentioned hear of the comment through task.mentioned only (recipients.py)
    commented = write.event(
        COMMENTED,
        derived_event_id(comment_id, COMMENTED),
        body=body,
        mentionedIds=[m.data["userId"] for m in mentions],
    )
    events = [commented, *mentions]
    await write.record(events, None, {"commentId": str(comment_id)})
    return await _item(repo, comment)


async def edit_comment(
    session: AsyncSession,
    principal: Principal,
    comment_id: uuid.UUID,
    body: str,
    *,
    max_mentions: int,
    trace_id: str | None = None,
) -> ThreadItem:
    """Replace the body of one's own comment (member role or above, as for writing one) and
    commit; members newly mentioned are told
    (a user hears of a given comment's mention at most once, however often it is edited)."""
    repo = CommentRepository.from_session(session)
    comment, task, role = await _comment_for(session, principal, comment_id)
    if comment.author_id != principal.user_id:
        raise ForbiddenError("Only the author can edit a comment")
    if not role_at_least(role, ProjectRole.MEMBER):  # as for writing one
        raise ForbiddenError("Editing a comment needs the member role")
    await refuse_if_archived(session, task.project_id)
    mentioned = _mentions(body, max_mentions)
    write = _CommentWrite(session, principal, task, comment_id, datetime.now(UTC), trace_id)
    await repo.set_body(comment_id, body, write.now)
    comment.body, comment.edited_at = body, write.now
    cause = derived_event_id(comment_id, EDITED, write.now.isoformat())
    events = [write.event(EDITED, cause, body=body), *await write.mentions(mentioned)]
    ref = {"commentId": str(comment_id)}
    await write.record(events, ref, {**ref, "editedAt": write.now.isoformat()})
    return await _item(repo, comment)


async def delete_comment(
    session: AsyncSession,
    principal: Principal,
    comment_id: uuid.UUID,
    *,
    trace_id: str | None = None,
) -> None:
    """Soft-delete a comment (its author, or a maintainer or owner of the project) and commit."""
    repo = CommentRepository.from_session(session)
    comment, task, role = await _comment_for(session, principal, comment_id)
    if comment.author_id != principal.user_id and not role_at_least(role, ProjectRole.MAINTAINER):
        raise ForbiddenError("Deleting needs being the author or the maintainer role")
    await refuse_if_archived(session, task.project_id)
    write = _CommentWrite(session, principal, task, comment_id, datetime.now(UTC), trace_id)
    await repo.mark_deleted(comment_id, write.now)
    ref = {"commentId": str(comment_id)}
    deleted = write.event(DELETED, derived_event_id(comment_id, DELETED))
    await write.record([deleted], ref, {**ref, "deleted": True})


async def list_comments(
    session: AsyncSession,
    principal: Principal,
    task_id: uuid.UUID,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> tuple[Sequence[ThreadItem], bool]:
    """A page of a live task's comments and reviews, oldest first, and whether more follow."""
    await _visible_task(session, principal, task_id, ProjectRole.VIEWER)
    rows = await CommentRepository.from_session(session).thread(
        task_id, after=after, limit=limit + 1
    )
    return rows[:limit], len(rows) > limit


# --- helpers ----------------------------------------------------------------------------------


async def _visible_task(
    session: AsyncSession, principal: Principal, task_id: uuid.UUID, min_role: ProjectRole
) -> TaskFacts:
    """The live task, if the caller is a member of its project (404 otherwise, exactly like a
    random id; 403 for a member below ``min_role``)."""
    task = await CommentRepository.from_session(session).task_facts(task_id)
    if task is None or task.deleted:
        raise NotFoundError("Task not found")
    try:
        await require_project_role(session, principal, task.project_id, min_role)
    except NotFoundError:
        raise NotFoundError("Task not found") from None
    return task


async def _comment_for(
    session: AsyncSession, principal: Principal, comment_id: uuid.UUID
) -> tuple[Comment, TaskFacts, ProjectRole]:
    """A live comment on a live task, locked until commit, with the caller's project role;
    404 for anyone who is not a member of the project."""
    repo = CommentRepository.from_session(session)
    comment = await repo.get_live(comment_id, lock=True)
    task = None if comment is None else await repo.task_facts(comment.task_id)
    if comment is None or task is None or task.deleted:
        raise NotFoundError("Comment not found")
    try:
        role = await require_project_role(session, principal, task.project_id)
    except NotFoundError:
        raise NotFoundError("Comment not found") from None
    return comment, task, role


def _mentions(body: str, max_mentions: int) -> list[uuid.UUID]:
    mentions = mentioned_user_ids(body)
    if len(mentions) > max_mentions:
        raise ValidationFailedError(
            [FieldError("body", f"must mention at most {max_mentions} people")]
        )
    return mentions


def _str(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


async def _item(repo: CommentRepository, comment: Comment) -> ThreadItem:
    return ThreadItem(
        id=comment.id,
        task_id=comment.task_id,
        kind="comment",
        author_id=comment.author_id,
        body=comment.body,
        verdict=None,
        created_at=comment.created_at,
        edited_at=comment.edited_at,
        author_name=await repo.user_name(comment.author_id),
    )
