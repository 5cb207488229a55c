"""Response bodies of the history routes (camelCase JSON)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from taskstream.fields import ApiStruct, example

# The task as the audit log records it (tasks/rules.py TaskState.snapshot), for the example.
TASK_SNAPSHOT = {
    "title": "Write the launch announcement",
    "description": "Blog post and newsletter, reviewed by marketing.",
    "status": "in_progress",
    "priority": "high",
    "deadline": "2026-12-10T17:00:00+00:00",
    "assigneeId": "0192f1e4-6a10-7b3e-8f21-9d8c7b6a5f40",
    "reviewerId": "0192f1e4-4b7c-7d2a-9c1e-2f3a4b5c6d7e",
    "version": 2,
    "deleted": False,
}


class HistoryEntry(ApiStruct):
    """One audit row: who (``actorId``, ``actorName``; null once the user is gone), what
    (``type``: ``task.created``, ``task.status_changed``, ``task.commented``, ...), when, and
    the task before and after (``before`` is null for a create; comment rows carry only the
    ``commentId``). ``commandId`` links to ``GET /commands/{id}``; null for comment writes,
    which are not commands."""

    id: int
    task_id: uuid.UUID
    task_title: str
    project_id: uuid.UUID
    type: str
    actor_id: uuid.UUID
    actor_name: str | None
    occurred_at: datetime
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    command_id: uuid.UUID | None


@example(
    {
        "items": [
            {
                "id": 48213,
                "taskId": "0192f1e6-2b4c-7d5e-8f60-718293a4b5c6",
                "taskTitle": "Write the launch announcement",
                "projectId": "0192f1e5-0c3d-7e4f-a1b2-c3d4e5f60718",
                "type": "task.status_changed",
                "actorId": "0192f1e4-6a10-7b3e-8f21-9d8c7b6a5f40",
                "actorName": "Grace Hopper",
                "occurredAt": "2026-12-03T17:01:00Z",
                "before": TASK_SNAPSHOT,
                "after": {**TASK_SNAPSHOT, "status": "in_review", "version": 3},
                "commandId": "0192f1e6-3c5d-7e6f-9a71-8293a4b5c6d7",
            }
        ],
        "nextCursor": "eyJpZCI6NDgyMTN9",
    }
)
class HistoryPage(ApiStruct):
    """One page; pass ``nextCursor`` as ``cursor`` for the next (null: no more)."""

    items: list[HistoryEntry]
    next_cursor: str | None
