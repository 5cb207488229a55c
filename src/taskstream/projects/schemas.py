"""Request and response bodies of the project routes (camelCase JSON)."""

from __future__ import annotations

import uuid
from datetime import datetime

from taskstream.auth.schemas import ApiStruct
from taskstream.enums import ProjectRole
from taskstream.fields import LongText, Name, RequestStruct


class CreateProjectRequest(RequestStruct):
    name: Name
    description: LongText | None = None


class AddMemberRequest(RequestStruct):
    user_id: uuid.UUID
    role: ProjectRole = ProjectRole.MEMBER


class ProjectResponse(ApiStruct):
    id: uuid.UUID
    name: str
    description: str | None
    owner_id: uuid.UUID
    is_personal: bool
    role: ProjectRole | None
    created_at: datetime


class MemberResponse(ApiStruct):
    project_id: uuid.UUID
    user_id: uuid.UUID
    role: ProjectRole


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
