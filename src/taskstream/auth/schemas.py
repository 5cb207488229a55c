"""Request and response bodies of the auth routes (camelCase JSON)."""

from __future__ import annotations

import uuid
from datetime import datetime

from taskstream.enums import UserRole
from taskstream.fields import ApiStruct, Email, Name, Password, RequestStruct, Token


class RegisterRequest(RequestStruct):
    name: Name
    email: Email
    password: Password


class LoginRequest(RequestStruct):
    email: Email
    password: Password


class RefreshRequest(RequestStruct):
    refresh_token: Token


class LogoutRequest(RequestStruct):
    refresh_token: Token | None = None


class UserResponse(ApiStruct):
    id: uuid.UUID
    email: str
    name: str
    role: UserRole = UserRole.MEMBER
    personal_project_id: uuid.UUID | None = None


class TokenResponse(ApiStruct):
    """``token`` equals ``accessToken`` for clients written against the seed design."""

    token: str
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a secret


class UserSummary(ApiStruct):
    """Someone the caller may add to a project: what a co-member sees."""

    id: uuid.UUID
    name: str
    email: str


class UpdateMeRequest(RequestStruct):
    name: Name


class ChangePasswordRequest(RequestStruct):
    current_password: Password
    new_password: Password


class PasswordResetRequest(RequestStruct):
    email: Email


class PasswordResetAccepted(ApiStruct):
    """The same answer whether or not the address has an account."""

    status: str = "accepted"
    detail: str = (
        "If an account uses this address, a reset link is on its way; it works once, "
        "for a limited time."
    )


class PasswordResetConfirm(RequestStruct):
    token: Token
    new_password: Password


class AdminUser(ApiStruct):
    id: uuid.UUID
    email: str
    name: str
    role: UserRole
    created_at: datetime
    deactivated_at: datetime | None = None


class AdminUserPage(ApiStruct):
    items: list[AdminUser]
    next_cursor: str | None = None


# Request examples shown in the OpenAPI document.
EXAMPLES: dict[str, dict[str, object]] = {
    "updateMe": {"name": "Ada Lovelace"},
    "changePassword": {
        "currentPassword": "my current pass 42",
        "newPassword": "a brand new pass 77",
    },
    "requestReset": {"email": "ada@example.com"},
    "confirmReset": {
        "token": "0f0e6c1b4c2d4a0e9d1f7b3a5c6d7e8f.kq3J0vXrQ7m9cX4N1l2b8YwZpD6fT0sHuVgE5aRyQxM",
        "newPassword": "a brand new pass 77",
    },
}
