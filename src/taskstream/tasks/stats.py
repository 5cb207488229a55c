"""Stream-derived project counters: the deltas of one batch, aggregated in memory.

Status counters and per-minute created/completed counts change only with commands, so the
consumer adds each batch's deltas in its transaction (``TaskRepository.add_stats``).
``overdue`` changes with the clock rather than with commands, so it is counted when read.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from taskstream.enums import TaskStatus
from taskstream.tasks.rules import TaskState

# project_stats has one counter column per task status, and one of deleted tasks
TASK_STATUSES = tuple(s.value for s in TaskStatus)
COUNTER_COLUMNS = (*TASK_STATUSES, "deleted")


class StatsDelta:
    """Counter changes of one batch, aggregated per project and per minute in memory.

    Plain dicts rather than Counters: ``record`` runs once per applied command."""

    __slots__ = ("_at", "_minute", "activity", "counters")

    def __init__(self) -> None:
        self.counters: dict[uuid.UUID, dict[str, int]] = {}
        # (project, minute) -> [created, completed]
        self.activity: dict[tuple[uuid.UUID, datetime], list[int]] = {}
        self._at: datetime | None = None
        self._minute = datetime.min

    def record(self, before: TaskState | None, after: TaskState, at: datetime) -> None:
        """Account for one task going from ``before`` to ``after`` (None: newly created)."""
        counters = self.counters.get(after.project_id)
        if counters is None:
            counters = self.counters[after.project_id] = dict.fromkeys(COUNTER_COLUMNS, 0)
        was_live = before is not None and before.deleted_at is None
        if before is not None and was_live:
            counters[before.status] -= 1
        if after.deleted_at is None:
            counters[after.status] += 1
        elif was_live:
            counters["deleted"] += 1
        created = before is None
        completed = after.status is TaskStatus.DONE and (
            before is None or before.status is not after.status
        )
        if created or completed:
            if at is not self._at:  # one `now` per batch: truncate it once
                self._at, self._minute = at, at.replace(second=0, microsecond=0)
            key = (after.project_id, self._minute)
            counts = self.activity.get(key)
            if counts is None:
                counts = self.activity[key] = [0, 0]
            counts[0] += created
            counts[1] += completed
