"""Request and response bodies of the task routes (camelCase JSON)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from taskstream.enums import ReviewVerdict, TaskPriority, TaskStatus
from taskstream.fields import ApiStruct, AwareDatetime, LongText, RequestStruct, Title


class CreateTaskRequest(RequestStruct):
    """No ``projectId``: the caller's personal project. ``userId`` is accepted for
    compatibility with older clients (the Express seed sends an integer) and ignored: any JSON
    scalar passes, and the actor is always the token's user."""

    title: Title
    description: LongText | None = None
    project_id: uuid.UUID | None = None
    priority: TaskPriority = TaskPriority.MEDIUM
    deadline: AwareDatetime | None = None
    assignee_id: uuid.UUID | None = None
    user_id: str | int | float | bool | None = None


class BatchCreateTasksRequest(RequestStruct):
    tasks: Annotated[list[CreateTaskRequest], msgspec.Meta(min_length=1)]


class UpdateTaskRequest(RequestStruct):
    """Only the fields present change; an explicit null clears description or deadline."""

    title: Title | msgspec.UnsetType = msgspec.UNSET
    description: LongText | msgspec.UnsetType | None = msgspec.UNSET
    priority: TaskPriority | msgspec.UnsetType = msgspec.UNSET
    deadline: AwareDatetime | msgspec.UnsetType | None = msgspec.UNSET


class AssignTaskRequest(RequestStruct):
    assignee_id: uuid.UUID | None
    reviewer_id: uuid.UUID | msgspec.UnsetType | None = msgspec.UNSET


class TransitionTaskRequest(RequestStruct):
    to: TaskStatus
    reviewer_id: uuid.UUID | None = None


class ReviewTaskRequest(RequestStruct):
    verdict: ReviewVerdict
    comment: LongText | None = None


class CommandAccepted(ApiStruct):
    """The command is durably in the broker; follow it at ``GET /commands/{commandId}``."""

    task_id: uuid.UUID
    command_id: uuid.UUID
    status: Literal["accepted"] = "accepted"


class AcceptedItem(ApiStruct):
    task_id: uuid.UUID
    command_id: uuid.UUID


class BatchAccepted(ApiStruct):
    status: Literal["accepted"] = "accepted"
    tasks: list[AcceptedItem] = msgspec.field(default_factory=list)


class TaskResponse(ApiStruct):
    id: uuid.UUID
    project_id: uuid.UUID
    title: str
    description: str | None
    status: TaskStatus
    priority: TaskPriority
    deadline: datetime | None
    assignee_id: uuid.UUID | None
    reviewer_id: uuid.UUID | None
    created_by: uuid.UUID
    version: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


class TaskPage(ApiStruct):
    """One page; pass ``nextCursor`` as ``cursor`` for the next (null: no more)."""

    items: list[TaskResponse]
    next_cursor: str | None


class StatusCounts(ApiStruct):
    todo: int = 0
    in_progress: int = 0
    in_review: int = 0
    done: int = 0
    cancelled: int = 0


class ActivityPoint(ApiStruct):
    minute: datetime
    created: int
    completed: int


class ProjectStatsResponse(ApiStruct):
    """Counters maintained by the command consumer; eventually consistent with the tasks."""

    project_id: uuid.UUID
    counts: StatusCounts
    total: int
    overdue: int
    deleted: int
    updated_at: datetime | None
    activity: list[ActivityPoint]
