"""Response bodies of the history routes (camelCase JSON)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from taskstream.fields import ApiStruct


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


class HistoryPage(ApiStruct):
    """One page; pass ``nextCursor`` as ``cursor`` for the next (null: no more)."""

    items: list[HistoryEntry]
    next_cursor: str | None
