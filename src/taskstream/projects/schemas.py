"""Request and response bodies of the project routes (camelCase JSON)."""

from __future__ import annotations

import uuid
from datetime import datetime

from taskstream.enums import ProjectRole
from taskstream.fields import ApiStruct, LongText, Name, RequestStruct


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
