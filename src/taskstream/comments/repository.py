"""All SQL of comments: the comment rows, the thread (comments and reviews), the task facts a
comment's events carry, and the audit row each comment write leaves in ``task_events``."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Text, cast, insert, literal_column, null, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from taskstream.auth.models import User
from taskstream.comments.models import Comment
from taskstream.db import Repository
from taskstream.enums import ReviewVerdict, TaskStatus
from taskstream.projects.models import ProjectMember
from taskstream.tasks.models import Task, TaskEvent, TaskReview


@dataclass(frozen=True, slots=True)
class TaskFacts:
    """What a comment needs to know about its task: where it lives, whether it is gone, and
    the people a ``task.commented`` event names."""

    id: uuid.UUID
    project_id: uuid.UUID
    title: str
    status: TaskStatus
    assignee_id: uuid.UUID | None
    reviewer_id: uuid.UUID | None
    created_by: uuid.UUID
    deleted: bool


@dataclass(frozen=True, slots=True)
class ThreadItem:
    """One entry of a task's thread: a comment or a review."""

    id: uuid.UUID
    task_id: uuid.UUID
    kind: str
    author_id: uuid.UUID
    body: str | None
    verdict: ReviewVerdict | None
    created_at: datetime
    edited_at: datetime | None
    author_name: str | None


_INSERTED = ("id", "task_id", "project_id", "author_id", "body", "created_at")
_TASK_FACTS = (
    Task.id,
    Task.project_id,
    Task.title,
    Task.status,
    Task.assignee_id,
    Task.reviewer_id,
    Task.created_by,
    Task.deleted_at.is_not(None),
)


class CommentRepository(Repository):
    async def task_facts(self, task_id: uuid.UUID) -> TaskFacts | None:
        """The task as stored (deleted ones too, flagged); None when there is no row."""
        row = (await self.session.execute(select(*_TASK_FACTS).where(Task.id == task_id))).first()
        return None if row is None else TaskFacts(*row)

    async def add(self, comment: Comment) -> bool:
        """Insert a comment; False when its id exists (a retried request with the same id)."""
        stmt = (
            pg_insert(Comment)
            .values(**{column: getattr(comment, column) for column in _INSERTED})
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(Comment.id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def get_live(self, comment_id: uuid.UUID, *, lock: bool = False) -> Comment | None:
        """A comment that is not deleted (locked until commit with ``lock``)."""
        stmt = select(Comment).where(Comment.id == comment_id, Comment.deleted_at.is_(None))
        if lock:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def set_body(self, comment_id: uuid.UUID, body: str, edited_at: datetime) -> None:
        stmt = (
            update(Comment).where(Comment.id == comment_id).values(body=body, edited_at=edited_at)
        )
        await self.session.execute(stmt)

    async def mark_deleted(self, comment_id: uuid.UUID, deleted_at: datetime) -> None:
        stmt = update(Comment).where(Comment.id == comment_id).values(deleted_at=deleted_at)
        await self.session.execute(stmt)

    async def user_name(self, user_id: uuid.UUID) -> str | None:
        return (
            await self.session.execute(select(User.name).where(User.id == user_id))
        ).scalar_one_or_none()

    async def current_members(
        self, project_id: uuid.UUID, user_ids: Iterable[uuid.UUID]
    ) -> set[uuid.UUID]:
        """Which of ``user_ids`` are members of the project now (any role) and not deleted."""
        wanted = list(set(user_ids))
        if not wanted:
            return set()
        stmt = (
            select(ProjectMember.user_id)
            .join(User, User.id == ProjectMember.user_id)
            .where(
                ProjectMember.project_id == project_id,
                ProjectMember.user_id.in_(wanted),
                User.deleted_at.is_(None),
            )
        )
        return set((await self.session.execute(stmt)).scalars().all())

    async def add_audit(
        self,
        *,
        task: TaskFacts,
        cause_id: uuid.UUID,
        actor_id: uuid.UUID,
        event_type: str,
        before: dict[str, Any] | None,
        after: dict[str, Any],
        occurred_at: datetime,
    ) -> None:
        """A ``task_events`` row for a comment write, in the comment's transaction."""
        stmt = insert(TaskEvent).values(
            task_id=task.id,
            project_id=task.project_id,
            command_id=cause_id,
            actor_id=actor_id,
            event_type=event_type,
            before=before,
            after=after,
            occurred_at=occurred_at,
        )
        await self.session.execute(stmt)

    async def thread(
        self, task_id: uuid.UUID, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> Sequence[ThreadItem]:
        """Live comments and reviews of a task in (created_at, id) order after the cursor."""
        comments = select(
            Comment.id.label("id"),
            literal_column("'comment'", Text).label("kind"),
            Comment.author_id.label("author_id"),
            Comment.body.label("body"),
            cast(null(), Text).label("verdict"),
            Comment.created_at.label("created_at"),
            Comment.edited_at.label("edited_at"),
        ).where(Comment.task_id == task_id, Comment.deleted_at.is_(None))
        reviews = select(
            TaskReview.id,
            literal_column("'review'", Text),
            TaskReview.reviewer_id,
            TaskReview.comment,
            cast(TaskReview.verdict, Text),
            TaskReview.created_at,
            cast(null(), DateTime(timezone=True)),
        ).where(TaskReview.task_id == task_id)
        both = comments.union_all(reviews).subquery("thread")
        stmt = select(*both.c, User.name).outerjoin(User, User.id == both.c.author_id)
        if after is not None:
            stmt = stmt.where(tuple_(both.c.created_at, both.c.id) > tuple_(*after))
        stmt = stmt.order_by(both.c.created_at, both.c.id).limit(limit)
        rows = (await self.session.execute(stmt)).all()
        return [
            ThreadItem(
                id=r.id,
                task_id=task_id,
                kind=r.kind,
                author_id=r.author_id,
                body=r.body,
                verdict=None if r.verdict is None else ReviewVerdict(r.verdict),
                created_at=r.created_at,
                edited_at=r.edited_at,
                author_name=r.name,
            )
            for r in rows
        ]
