"""Request and response bodies of the task routes (camelCase JSON)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from taskstream.enums import ReviewVerdict, TaskPriority, TaskStatus
from taskstream.fields import ApiStruct, AwareDatetime, LongText, RequestStruct, Title, example

# Values shared by the OpenAPI examples below (wire form).
TASK_ID = "0192f1e6-2b4c-7d5e-8f60-718293a4b5c6"
COMMAND_ID = "0192f1e6-3c5d-7e6f-9a71-8293a4b5c6d7"
PROJECT_ID = "0192f1e5-0c3d-7e4f-a1b2-c3d4e5f60718"
ADA_ID = "0192f1e4-4b7c-7d2a-9c1e-2f3a4b5c6d7e"
GRACE_ID = "0192f1e4-6a10-7b3e-8f21-9d8c7b6a5f40"


CREATE_TASK_EXAMPLE = {
    "title": "Write the launch announcement",
    "description": "Blog post and newsletter, reviewed by marketing.",
    "projectId": PROJECT_ID,
    "priority": "high",
    "deadline": "2026-12-10T17:00:00Z",
    "assigneeId": GRACE_ID,
}


@example(CREATE_TASK_EXAMPLE)
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


@example(
    {
        "tasks": [
            CREATE_TASK_EXAMPLE,
            {"title": "Update the privacy page", "projectId": PROJECT_ID, "priority": "low"},
        ]
    }
)
class BatchCreateTasksRequest(RequestStruct):
    tasks: Annotated[list[CreateTaskRequest], msgspec.Meta(min_length=1)]


@example({"title": "Write the launch announcement (v2)", "priority": "urgent"})
class UpdateTaskRequest(RequestStruct):
    """Only the fields present change; an explicit null clears description or deadline."""

    title: Title | msgspec.UnsetType = msgspec.UNSET
    description: LongText | msgspec.UnsetType | None = msgspec.UNSET
    priority: TaskPriority | msgspec.UnsetType = msgspec.UNSET
    deadline: AwareDatetime | msgspec.UnsetType | None = msgspec.UNSET


@example({"assigneeId": GRACE_ID, "reviewerId": ADA_ID})
class AssignTaskRequest(RequestStruct):
    assignee_id: uuid.UUID | None
    reviewer_id: uuid.UUID | msgspec.UnsetType | None = msgspec.UNSET


@example({"to": "in_review", "reviewerId": ADA_ID})
class TransitionTaskRequest(RequestStruct):
    to: TaskStatus
    reviewer_id: uuid.UUID | None = None


@example({"verdict": "request_changes", "comment": "Please add the pricing table."})
class ReviewTaskRequest(RequestStruct):
    verdict: ReviewVerdict
    comment: LongText | None = None


@example({"taskId": TASK_ID, "commandId": COMMAND_ID, "status": "accepted"})
class CommandAccepted(ApiStruct):
    """The command is durably in the broker; follow it at ``GET /commands/{commandId}``."""

    task_id: uuid.UUID
    command_id: uuid.UUID
    status: Literal["accepted"] = "accepted"


class AcceptedItem(ApiStruct):
    task_id: uuid.UUID
    command_id: uuid.UUID


@example(
    {
        "status": "accepted",
        "tasks": [
            {"taskId": TASK_ID, "commandId": COMMAND_ID},
            {
                "taskId": "0192f1e6-2b4c-7d5e-8f60-718293a4b5c7",
                "commandId": "0192f1e6-3c5d-7e6f-9a71-8293a4b5c6d8",
            },
        ],
    }
)
class BatchAccepted(ApiStruct):
    status: Literal["accepted"] = "accepted"
    tasks: list[AcceptedItem] = msgspec.field(default_factory=list)


TASK_EXAMPLE = {
    "id": TASK_ID,
    "projectId": PROJECT_ID,
    "title": "Write the launch announcement",
    "description": "Blog post and newsletter, reviewed by marketing.",
    "status": "done",
    "priority": "high",
    "deadline": "2026-12-10T17:00:00Z",
    "assigneeId": GRACE_ID,
    "reviewerId": ADA_ID,
    "createdBy": ADA_ID,
    "version": 3,
    "createdAt": "2026-12-03T09:12:00Z",
    "updatedAt": "2026-12-03T17:01:00Z",
    "completedAt": "2026-12-03T17:01:00Z",
}


@example(TASK_EXAMPLE)
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


@example(
    {
        "items": [TASK_EXAMPLE],
        "nextCursor": "eyJrIjoiMjAyNi0xMi0wM1QxNzowMTowMFoiLCJpZCI6IjAxOTJmMWU2In0",
    }
)
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


@example(
    {
        "projectId": PROJECT_ID,
        "counts": {"todo": 12, "inProgress": 4, "inReview": 2, "done": 31, "cancelled": 1},
        "total": 50,
        "overdue": 3,
        "deleted": 2,
        "updatedAt": "2026-12-03T17:01:00Z",
        "activity": [
            {"minute": "2026-12-03T17:00:00Z", "created": 3, "completed": 1},
            {"minute": "2026-12-03T17:01:00Z", "created": 1, "completed": 2},
        ],
    }
)
class ProjectStatsResponse(ApiStruct):
    """Counters maintained by the command consumer; eventually consistent with the tasks."""

    project_id: uuid.UUID
    counts: StatusCounts
    total: int
    overdue: int
    deleted: int
    updated_at: datetime | None
    activity: list[ActivityPoint]
