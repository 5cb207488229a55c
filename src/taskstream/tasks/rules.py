"""Domain rules for task commands: pure functions over in-memory task state.

The consumer loads every task a batch touches and the memberships it needs, then calls
``decide`` once per command in offset order. A rule that fails raises ``Rejected`` with a
reason the client reads at ``GET /commands/{id}``; nothing here touches the database.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

import msgspec

from taskstream.enums import ProjectRole, ReviewVerdict, TaskPriority, TaskStatus, UserRole
from taskstream.messages import (
    AssignTask,
    CreateTask,
    DeleteTask,
    ReviewTask,
    TaskCommand,
    TransitionTask,
    UpdateTask,
)

TITLE_MAX = 500
WRITER_ROLES = frozenset({ProjectRole.OWNER, ProjectRole.MAINTAINER, ProjectRole.MEMBER})
MANAGER_ROLES = frozenset({ProjectRole.OWNER, ProjectRole.MAINTAINER})

# The state machine. Reviews move in_review -> done/in_progress; a transition may not.
# done -> todo is refused: a finished task is reopened (-> in_progress) first.
TRANSITIONS: Mapping[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.TODO: frozenset({TaskStatus.IN_PROGRESS, TaskStatus.CANCELLED}),
    TaskStatus.IN_PROGRESS: frozenset(
        {TaskStatus.TODO, TaskStatus.IN_REVIEW, TaskStatus.DONE, TaskStatus.CANCELLED}
    ),
    TaskStatus.IN_REVIEW: frozenset({TaskStatus.IN_PROGRESS, TaskStatus.CANCELLED}),
    TaskStatus.DONE: frozenset({TaskStatus.IN_PROGRESS}),
    TaskStatus.CANCELLED: frozenset({TaskStatus.TODO}),
}


class Rejected(Exception):
    """The command breaks a rule; it is recorded as rejected and the stream moves on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class TaskState:
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
    completed_at: datetime | None = None
    deleted_at: datetime | None = None

    # Both dicts are only ever JSON-encoded by msgspec, which writes a UUID as its canonical
    # string and a StrEnum as its value: the same JSON as str()/.value, without the calls.
    def snapshot(self) -> dict[str, Any]:
        """The audit representation (task_events.before/after), camelCase like the wire."""
        return {
            "title": self.title,
            "description": self.description,
            "status": self.status,
            "priority": self.priority,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "assigneeId": self.assignee_id,
            "reviewerId": self.reviewer_id,
            "version": self.version,
            "deleted": self.deleted_at is not None,
        }

    def event_data(self) -> dict[str, Any]:
        """The fields every task event's ``data`` carries (docs/contracts.md)."""
        return {
            "taskId": self.id,
            "projectId": self.project_id,
            "title": self.title,
            "status": self.status,
            "assigneeId": self.assignee_id,
            "reviewerId": self.reviewer_id,
            "createdBy": self.created_by,
        }


# The one task-row shape: the columns of ``tasks`` the applier reads and writes, in the order
# of TaskState's fields (rows are built with ``TaskState(*row)``).
TASK_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(TaskState))


@dataclass(frozen=True, slots=True)
class Access:
    """Project roles of the (project, user) pairs a batch needs, loaded in one query."""

    roles: Mapping[tuple[uuid.UUID, uuid.UUID], ProjectRole]

    def role(self, project_id: uuid.UUID, user_id: uuid.UUID) -> ProjectRole | None:
        return self.roles.get((project_id, user_id))


@dataclass(frozen=True, slots=True)
class ReviewRecord:
    id: uuid.UUID
    task_id: uuid.UUID
    reviewer_id: uuid.UUID
    verdict: ReviewVerdict
    comment: str | None


@dataclass(slots=True)
class Decision:
    """What an accepted command does: the new state, its audit type and domain events."""

    before: TaskState | None
    after: TaskState
    audit_type: str
    # (event type, extra data) in the order they happened.
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    review: ReviewRecord | None = None


def pairs_needed(
    command: TaskCommand, project_id: uuid.UUID | None
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """(project, user) pairs whose membership ``decide`` may consult for this command."""
    if project_id is None:
        return set()
    users = {command.actor.user_id}
    payload = command.payload
    if isinstance(payload, CreateTask | AssignTask) and payload.assignee_id:
        users.add(payload.assignee_id)
    if isinstance(payload, AssignTask | TransitionTask) and isinstance(
        payload.reviewer_id, uuid.UUID
    ):
        users.add(payload.reviewer_id)
    return {(project_id, u) for u in users}


def decide(
    command: TaskCommand, current: TaskState | None, access: Access, now: datetime
) -> Decision:
    """Apply the rules for one command to the task's current state (None: does not exist)."""
    payload = command.payload
    if isinstance(payload, CreateTask):
        return _create(command, payload, current, access)
    task = _existing(current)
    _require_writer(command, task.project_id, access)
    if isinstance(payload, UpdateTask):
        return _update(payload, task, now)
    if isinstance(payload, AssignTask):
        return _assign(payload, task, access, now)
    if isinstance(payload, TransitionTask):
        return _transition(payload, task, access, now)
    if isinstance(payload, ReviewTask):
        return _review(command, payload, task, now)
    if isinstance(payload, DeleteTask):
        return _delete(command, task, access, now)
    raise Rejected(f"unsupported command {command.type}")  # pragma: no cover - registry bound


def _existing(current: TaskState | None) -> TaskState:
    if current is None or current.deleted_at is not None:
        raise Rejected("task not found")
    return current


def _is_admin(command: TaskCommand) -> bool:
    return command.actor.role is UserRole.ADMIN


def _require_writer(command: TaskCommand, project_id: uuid.UUID, access: Access) -> None:
    if _is_admin(command):
        return
    role = access.role(project_id, command.actor.user_id)
    if role is None:
        raise Rejected("actor is not a member of the project")
    if role not in WRITER_ROLES:
        raise Rejected("actor may not change tasks in this project")


def _require_member(access: Access, project_id: uuid.UUID, user_id: uuid.UUID, what: str) -> None:
    if access.role(project_id, user_id) is None:
        raise Rejected(f"{what} is not a member of the project")


def _check_title(title: str) -> None:
    if not title.strip():
        raise Rejected("title must not be empty")
    if len(title) > TITLE_MAX:
        raise Rejected(f"title longer than {TITLE_MAX} characters")


def _bump(task: TaskState, now: datetime, **changes: Any) -> TaskState:
    return replace(task, version=task.version + 1, updated_at=now, **changes)


def _create(
    command: TaskCommand, payload: CreateTask, current: TaskState | None, access: Access
) -> Decision:
    if current is not None:
        raise Rejected("a task with this id already exists")
    _require_writer(command, payload.project_id, access)
    _check_title(payload.title)
    if payload.assignee_id is not None:
        _require_member(access, payload.project_id, payload.assignee_id, "assignee")
    at = command.occurred_at
    task = TaskState(
        id=command.task_id,
        project_id=payload.project_id,
        title=payload.title,
        description=payload.description,
        status=TaskStatus.TODO,
        priority=payload.priority,
        deadline=payload.deadline,
        assignee_id=payload.assignee_id,
        reviewer_id=None,
        created_by=command.actor.user_id,
        version=1,
        created_at=at,
        updated_at=at,
    )
    events: list[tuple[str, dict[str, Any]]] = [("task.created", {})]
    if payload.assignee_id is not None:
        events.append(("task.assigned", {"previousAssigneeId": None}))
    return Decision(None, task, "task.created", events)


def _update(payload: UpdateTask, task: TaskState, now: datetime) -> Decision:
    changes: dict[str, Any] = {}
    for name in ("title", "description", "priority", "deadline"):
        value = getattr(payload, name)
        if value is not msgspec.UNSET and value != getattr(task, name):
            changes[name] = value
    if "title" in changes:
        if changes["title"] is None:
            raise Rejected("title must not be empty")
        _check_title(changes["title"])
    after = _bump(task, now, **changes)
    return Decision(task, after, "task.updated", [("task.updated", {"changes": sorted(changes)})])


def _assign(payload: AssignTask, task: TaskState, access: Access, now: datetime) -> Decision:
    if payload.assignee_id is not None:
        _require_member(access, task.project_id, payload.assignee_id, "assignee")
    reviewer = task.reviewer_id
    if payload.reviewer_id is not msgspec.UNSET:
        reviewer = payload.reviewer_id
        if reviewer is not None:
            _require_member(access, task.project_id, reviewer, "reviewer")
        elif task.status is TaskStatus.IN_REVIEW:
            raise Rejected("a task in review needs a reviewer")
    after = _bump(task, now, assignee_id=payload.assignee_id, reviewer_id=reviewer)
    extra = {"previousAssigneeId": str(task.assignee_id) if task.assignee_id else None}
    return Decision(task, after, "task.assigned", [("task.assigned", extra)])


def _status_events(before: TaskStatus, after: TaskStatus) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = [
        ("task.status_changed", {"from": before.value, "to": after.value})
    ]
    if after is TaskStatus.IN_REVIEW:
        events.append(("task.review_requested", {}))
    if after is TaskStatus.DONE:
        events.append(("task.completed", {}))
    return events


def _moved(task: TaskState, to: TaskStatus, now: datetime, **changes: Any) -> TaskState:
    completed_at = now if to is TaskStatus.DONE else None
    return _bump(task, now, status=to, completed_at=completed_at, **changes)


def _transition(
    payload: TransitionTask, task: TaskState, access: Access, now: datetime
) -> Decision:
    if payload.to is task.status:
        raise Rejected(f"task is already {task.status.value}")
    if payload.to not in TRANSITIONS[task.status]:
        if task.status is TaskStatus.IN_REVIEW and payload.to is TaskStatus.DONE:
            raise Rejected("a task in review is completed by an approving review")
        raise Rejected(f"cannot move a task from {task.status.value} to {payload.to.value}")
    reviewer = task.reviewer_id
    if payload.reviewer_id is not None:
        _require_member(access, task.project_id, payload.reviewer_id, "reviewer")
        reviewer = payload.reviewer_id
    if payload.to is TaskStatus.IN_REVIEW and reviewer is None:
        raise Rejected("in_review needs a reviewer")
    after = _moved(task, payload.to, now, reviewer_id=reviewer)
    return Decision(task, after, "task.status_changed", _status_events(task.status, payload.to))


def _review(command: TaskCommand, payload: ReviewTask, task: TaskState, now: datetime) -> Decision:
    if task.status is not TaskStatus.IN_REVIEW:
        raise Rejected("task is not in review")
    if task.reviewer_id != command.actor.user_id and not _is_admin(command):
        raise Rejected("only the task's reviewer may review it")
    to = TaskStatus.DONE if payload.verdict is ReviewVerdict.APPROVE else TaskStatus.IN_PROGRESS
    after = _moved(task, to, now)
    review = ReviewRecord(
        payload.review_id, task.id, command.actor.user_id, payload.verdict, payload.comment
    )
    extra = {
        "verdict": payload.verdict.value,
        "comment": payload.comment,
        "reviewId": str(payload.review_id),
    }
    events = [("task.reviewed", extra), *_status_events(task.status, to)]
    return Decision(task, after, "task.reviewed", events, review)


def _delete(command: TaskCommand, task: TaskState, access: Access, now: datetime) -> Decision:
    role = access.role(task.project_id, command.actor.user_id)
    allowed = (
        _is_admin(command) or task.created_by == command.actor.user_id or role in MANAGER_ROLES
    )
    if not allowed:
        raise Rejected("only the creator or a project owner/maintainer may delete a task")
    after = _bump(task, now, deleted_at=now)
    return Decision(task, after, "task.deleted", [("task.deleted", {})])
