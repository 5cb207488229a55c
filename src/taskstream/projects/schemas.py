"""Request and response bodies of the project routes (camelCase JSON)."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from taskstream.enums import ProjectRole
from taskstream.fields import ApiStruct, Email, LongText, Name, RequestStruct, example

# Values shared by the OpenAPI examples below (wire form).
PROJECT_ID = "0192f1e5-0c3d-7e4f-a1b2-c3d4e5f60718"
ADA_ID = "0192f1e4-4b7c-7d2a-9c1e-2f3a4b5c6d7e"
GRACE_ID = "0192f1e4-6a10-7b3e-8f21-9d8c7b6a5f40"
INVITATION_ID = "0192f1e5-7d21-7c40-9e3b-5a6b7c8d9e0f"
NEXT_CURSOR = "eyJrIjoiMjAyNi0xMi0wM1QxNzowMTowMFoiLCJpZCI6IjAxOTJmMWU0In0"


@example({"name": "Website relaunch", "description": "Everything for the December launch."})
class CreateProjectRequest(RequestStruct):
    name: Name
    description: LongText | None = None


@example({"name": "Website relaunch 2027", "description": "Launch moved to January."})
class UpdateProjectRequest(RequestStruct):
    """The fields to change; at least one. ``description: null`` clears it."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: LongText | msgspec.UnsetType | None = msgspec.UNSET


@example({"userId": GRACE_ID, "role": "maintainer"})
class AddMemberRequest(RequestStruct):
    user_id: uuid.UUID
    role: ProjectRole = ProjectRole.MEMBER


@example({"role": "viewer"})
class ChangeMemberRoleRequest(RequestStruct):
    role: ProjectRole


@example({"userId": GRACE_ID})
class TransferOwnershipRequest(RequestStruct):
    user_id: uuid.UUID


@example({"email": "grace@example.com", "role": "member"})
class InviteRequest(RequestStruct):
    email: Email
    role: ProjectRole = ProjectRole.MEMBER


@example(
    {
        "id": PROJECT_ID,
        "name": "Website relaunch",
        "description": "Everything for the December launch.",
        "ownerId": ADA_ID,
        "isPersonal": False,
        "role": "owner",
        "createdAt": "2026-11-02T09:15:00Z",
        "archivedAt": None,
    }
)
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


@example({"projectId": PROJECT_ID, "userId": GRACE_ID, "role": "maintainer"})
class MemberResponse(ApiStruct):
    project_id: uuid.UUID
    user_id: uuid.UUID
    role: ProjectRole


class MemberItem(ApiStruct):
    user_id: uuid.UUID
    name: str
    role: ProjectRole
    joined_at: datetime


@example(
    {
        "items": [
            {
                "userId": ADA_ID,
                "name": "Ada Lovelace",
                "role": "owner",
                "joinedAt": "2026-11-02T09:15:00Z",
            },
            {
                "userId": GRACE_ID,
                "name": "Grace Hopper",
                "role": "maintainer",
                "joinedAt": "2026-11-05T14:30:00Z",
            },
        ],
        "nextCursor": NEXT_CURSOR,
    }
)
class MemberPage(ApiStruct):
    items: list[MemberItem]
    next_cursor: str | None


INVITATION_EXAMPLE = {
    "id": INVITATION_ID,
    "projectId": PROJECT_ID,
    "email": "grace@example.com",
    "role": "member",
    "invitedBy": ADA_ID,
    "createdAt": "2026-12-03T17:01:00Z",
    "expiresAt": "2026-12-10T17:01:00Z",
}


@example(INVITATION_EXAMPLE)
class InvitationResponse(ApiStruct):
    id: uuid.UUID
    project_id: uuid.UUID
    email: str
    role: ProjectRole
    invited_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime


@example({"items": [INVITATION_EXAMPLE], "nextCursor": NEXT_CURSOR})
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


@example(
    {
        "items": [
            {
                "id": INVITATION_ID,
                "projectId": PROJECT_ID,
                "projectName": "Website relaunch",
                "role": "member",
                "createdAt": "2026-12-03T17:01:00Z",
                "expiresAt": "2026-12-10T17:01:00Z",
            }
        ],
        "nextCursor": None,
    }
)
class MyInvitationPage(ApiStruct):
    items: list[MyInvitation]
    next_cursor: str | None
