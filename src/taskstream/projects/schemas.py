"""Request and response bodies of the project routes (camelCase JSON)."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from taskstream.enums import ProjectRole
from taskstream.fields import ApiStruct, Email, LongText, Name, RequestStruct


class CreateProjectRequest(RequestStruct):
    name: Name
    description: LongText | None = None


class UpdateProjectRequest(RequestStruct):
    """The fields to change; at least one. ``description: null`` clears it."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: LongText | msgspec.UnsetType | None = msgspec.UNSET


class AddMemberRequest(RequestStruct):
    user_id: uuid.UUID
    role: ProjectRole = ProjectRole.MEMBER


class ChangeMemberRoleRequest(RequestStruct):
    role: ProjectRole


class TransferOwnershipRequest(RequestStruct):
    user_id: uuid.UUID


class InviteRequest(RequestStruct):
    email: Email
    role: ProjectRole = ProjectRole.MEMBER


class ProjectResponse(ApiStruct):
    id: uuid.UUID
    name: str
    description: str | None
    owner_id: uuid.UUID
    is_personal: bool
    role: ProjectRole | None
    created_at: datetime
    # set: the project is archived (readable, takes no new task commands)
    archived_at: datetime | None = None


class MemberResponse(ApiStruct):
    project_id: uuid.UUID
    user_id: uuid.UUID
    role: ProjectRole


class MemberItem(ApiStruct):
    user_id: uuid.UUID
    name: str
    role: ProjectRole
    joined_at: datetime


class MemberPage(ApiStruct):
    items: list[MemberItem]
    next_cursor: str | None


class InvitationResponse(ApiStruct):
    id: uuid.UUID
    project_id: uuid.UUID
    email: str
    role: ProjectRole
    invited_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime


class InvitationPage(ApiStruct):
    items: list[InvitationResponse]
    next_cursor: str | None


class MyInvitation(ApiStruct):
    id: uuid.UUID
    project_id: uuid.UUID
    project_name: str
    role: ProjectRole
    created_at: datetime
    expires_at: datetime


class MyInvitationPage(ApiStruct):
    items: list[MyInvitation]
    next_cursor: str | None
