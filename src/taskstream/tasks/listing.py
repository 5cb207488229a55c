"""How ``GET /tasks`` pages: the filters, the sort orders and the opaque cursors.

Every sort is a keyset on (sort key, id), so a page is an index range scan however deep the
client pages, and every task whose sort key does not change meanwhile is returned exactly once
(one whose key changes moves: it may be seen twice or not at all, as with any keyset). A cursor
names its sort and a digest of the filters it was made under:
used with another sort or other filters it would silently skip or repeat tasks, so it is a 422.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import msgspec

from taskstream.enums import TaskPriority, TaskStatus
from taskstream.errors import FieldError, ValidationFailedError
from taskstream.fields import storable_datetime_error
from taskstream.tasks.models import Task
from taskstream.tasks.search import TextSearch


class TaskSort(StrEnum):
    """``field`` ascending, ``-field`` descending; ties broken by task id in the same direction.
    ``deadline``: tasks without one sort as if it were infinitely far (last ascending, first
    descending). ``priority``: by rank (low < medium < high < urgent), not by name."""

    CREATED_AT = "createdAt"
    CREATED_AT_DESC = "-createdAt"
    UPDATED_AT = "updatedAt"
    UPDATED_AT_DESC = "-updatedAt"
    DEADLINE = "deadline"
    DEADLINE_DESC = "-deadline"
    PRIORITY = "priority"
    PRIORITY_DESC = "-priority"

    @property
    def descending(self) -> bool:
        return self.value.startswith("-")

    @property
    def key(self) -> str:
        """The sort field without direction: createdAt, updatedAt, deadline or priority."""
        return self.value.removeprefix("-")


@dataclass(frozen=True, slots=True)
class TaskFilter:
    project_id: uuid.UUID | None = None
    status: TaskStatus | None = None
    assignee_id: uuid.UUID | None = None
    priority: TaskPriority | None = None
    due_before: datetime | None = None
    created_by: uuid.UUID | None = None
    reviewer_id: uuid.UUID | None = None
    updated_since: datetime | None = None
    overdue: bool = False
    search: TextSearch | None = None

    def digest(self) -> str:
        """Short, stable fingerprint of the filter set (what a cursor must be used with)."""
        canonical = msgspec.json.encode(
            [
                self.project_id,
                self.status,
                self.assignee_id,
                self.priority,
                self.due_before,
                self.created_by,
                self.reviewer_id,
                self.updated_since,
                self.overdue,
                None if self.search is None else [self.search.words, self.search.prefixes],
            ]
        )
        return hashlib.blake2b(canonical, digest_size=6).hexdigest()


# The value of a task's sort key as a cursor carries it.
SortValue = datetime | TaskPriority | None


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ends: the last task's sort key and id."""

    value: SortValue
    task_id: uuid.UUID


def sort_value(task: Task, sort: TaskSort) -> SortValue:
    key = sort.key
    if key == "createdAt":
        return task.created_at
    if key == "updatedAt":
        return task.updated_at
    if key == "deadline":
        return task.deadline
    return task.priority


def encode_cursor(task: Task, sort: TaskSort, filters: TaskFilter) -> str:
    """The cursor of the page that follows ``task`` in this sort under these filters."""
    raw = msgspec.json.encode([sort.value, filters.digest(), sort_value(task, sort), task.id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _invalid(message: str = "is not a valid cursor") -> ValidationFailedError:
    return ValidationFailedError([FieldError("cursor", message)])


def decode_cursor(cursor: str, sort: TaskSort, filters: TaskFilter) -> Position:
    """The position a cursor names; 422 for anything ``encode_cursor`` could not have produced
    for this sort and these filters (a crafted cursor must not reach SQL with an unstorable
    datetime or an unknown priority)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        made_for, digest, value, task_id = msgspec.json.decode(
            raw, type=tuple[str, str, str | None, uuid.UUID]
        )
    except (binascii.Error, ValueError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise _invalid() from exc
    if made_for != sort.value:
        raise _invalid(f"was made for sort={made_for[:20]!r}; use it with that sort")
    if digest != filters.digest():
        raise _invalid("was made for other filters; use it with the same filters and q")
    return Position(_sort_value(sort, value), task_id)


def _sort_value(sort: TaskSort, value: str | None) -> SortValue:
    if sort.key == "priority":
        try:
            return TaskPriority(value or "")
        except ValueError:
            raise _invalid() from None
    if value is None:
        if sort.key == "deadline":
            return None
        raise _invalid()
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise _invalid() from None
    if storable_datetime_error(at) is not None:
        raise _invalid()
    return at
