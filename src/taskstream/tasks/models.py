"""Tasks and everything the stream consumers derive from task commands."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from taskstream.db import Base, created_at_column, pg_enum
from taskstream.enums import CommandState, ReviewVerdict, TaskPriority, TaskStatus
from taskstream.tasks.search import SEARCH_DOCUMENT

# "No deadline" sorts as a deadline infinitely far away (last ascending, first descending), so
# one keyset condition and one index serve both directions. Spelled as PostgreSQL prints it.
DEADLINE_SORT_KEY = "COALESCE(deadline, 'infinity'::timestamp with time zone)"


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        # Keyset pagination within a project: ORDER BY created_at, id.
        Index(None, "project_id", "created_at", "id"),
        Index(None, "assignee_id"),
        # The other list sorts within a project (keyset on (key, id), both directions).
        Index(None, "project_id", "updated_at", "id"),
        Index(None, "project_id", "priority", "id"),
        Index("ix_tasks_project_deadline", "project_id", text(DEADLINE_SORT_KEY), "id"),
        # Full-text search over title and description (``tasks/search.py``).
        Index("ix_tasks_search", text(SEARCH_DOCUMENT), postgresql_using="gin"),
        Index(
            "ix_tasks_deadline_open",
            "deadline",
            postgresql_where=text("deleted_at IS NULL AND overdue_notified_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[TaskStatus] = mapped_column(
        pg_enum(TaskStatus, "task_status"), server_default=TaskStatus.TODO.value
    )
    priority: Mapped[TaskPriority] = mapped_column(
        pg_enum(TaskPriority, "task_priority"), server_default=TaskPriority.MEDIUM.value
    )
    deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    reviewer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    overdue_notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TaskReview(Base):
    __tablename__ = "task_reviews"
    __table_args__ = (Index(None, "task_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    reviewer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    verdict: Mapped[ReviewVerdict] = mapped_column(pg_enum(ReviewVerdict, "review_verdict"))
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()


class TaskEvent(Base):
    """The audit trail: one row per applied command, with the state before and after, and
    one per comment write (``comments/service.py``: ``command_id`` is then its event's id)."""

    __tablename__ = "task_events"
    # a task's history, and a project's activity feed (newest first)
    __table_args__ = (Index(None, "task_id", "id"), Index(None, "project_id", "id"))

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    task_id: Mapped[uuid.UUID]
    project_id: Mapped[uuid.UUID]
    command_id: Mapped[uuid.UUID]
    actor_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    occurred_at: Mapped[datetime] = created_at_column()


class CommandStatus(Base):
    """What became of a command the API accepted; read by ``GET /commands/{id}``."""

    __tablename__ = "command_statuses"
    __table_args__ = (Index(None, "task_id"),)

    command_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    command_type: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[uuid.UUID | None]
    actor_id: Mapped[uuid.UUID]
    status: Mapped[CommandState] = mapped_column(pg_enum(CommandState, "command_state"))
    reason: Mapped[str | None] = mapped_column(Text)
    accepted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    applied_at: Mapped[datetime] = created_at_column()


class ProjectStats(Base):
    """Per-project counters kept by the consumers in the same transaction as the tasks.

    No overdue counter: that count changes with the clock, so it is computed when read
    (``TaskReadRepository.count_overdue``)."""

    __tablename__ = "project_stats"

    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    todo: Mapped[int] = mapped_column(Integer, server_default="0")
    in_progress: Mapped[int] = mapped_column(Integer, server_default="0")
    in_review: Mapped[int] = mapped_column(Integer, server_default="0")
    done: Mapped[int] = mapped_column(Integer, server_default="0")
    cancelled: Mapped[int] = mapped_column(Integer, server_default="0")
    deleted: Mapped[int] = mapped_column(Integer, server_default="0")
    updated_at: Mapped[datetime] = created_at_column()


class ProjectActivity(Base):
    """Tasks created and completed per project per minute."""

    __tablename__ = "project_activity"

    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    minute: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    created: Mapped[int] = mapped_column(Integer, server_default="0")
    completed: Mapped[int] = mapped_column(Integer, server_default="0")
