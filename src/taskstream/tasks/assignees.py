"""Assignees and reviewers named in a command must be members of the task's project.

The consumer applies this rule when it applies the command and would reject it there; the API
checks it as well because the per-process membership cache makes it cheap to say so at once
(422 with the field) instead of a 202 followed by a rejection.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import msgspec

from taskstream.errors import FieldError, ValidationFailedError
from taskstream.projects.access import ProjectAccessCache


async def require_project_members(
    access: ProjectAccessCache,
    project_id: uuid.UUID,
    people: Mapping[str, uuid.UUID | msgspec.UnsetType | None],
) -> None:
    """422 naming each field (``assigneeId``, ``tasks[2].assigneeId``...) whose user is not
    a member of the project; absent and null fields name nobody."""
    errors = [
        FieldError(path, "must be a member of the task's project")
        for path, user_id in people.items()
        if isinstance(user_id, uuid.UUID) and not await access.is_member(project_id, user_id)
    ]
    if errors:
        raise ValidationFailedError(errors)
