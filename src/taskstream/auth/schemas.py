"""Request and response bodies of the auth routes (camelCase JSON)."""

from __future__ import annotations

import uuid
from datetime import datetime

from taskstream.enums import UserRole
from taskstream.fields import ApiStruct, Email, Name, Password, RequestStruct, Token, example

# Values shared by the OpenAPI examples below (wire form).
ADA_ID = "0192f1e4-4b7c-7d2a-9c1e-2f3a4b5c6d7e"
ADA_PROJECT_ID = "0192f1e4-4b7d-7a10-8b2c-3d4e5f607182"
EXAMPLE_JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIwMTkyZjFlNC00YjdjLTdkMmEtOWMxZS0yZjNhNGI1YzZkN2UiLCJleHAiOjE3OTY3NDAwMDB9."
    "pM1n4bVf0dQ7rE2sK9wL3xY6zA8cJ5hG1tN0uI4oR7e"
)
NEW_PASSWORD = "a brand new pass 77"  # noqa: S105 - an example


@example({"name": "Ada Lovelace", "email": "ada@example.com", "password": "correct horse battery"})
class RegisterRequest(RequestStruct):
    name: Name
    email: Email
    password: Password


@example({"email": "ada@example.com", "password": "correct horse battery"})
class LoginRequest(RequestStruct):
    email: Email
    password: Password


@example({"refreshToken": "kq3J0vXrQ7m9cX4N1l2b8YwZpD6fT0sHuVgE5aRyQxM"})
class RefreshRequest(RequestStruct):
    refresh_token: Token


@example({"refreshToken": "kq3J0vXrQ7m9cX4N1l2b8YwZpD6fT0sHuVgE5aRyQxM"})
class LogoutRequest(RequestStruct):
    refresh_token: Token | None = None


@example(
    {
        "id": ADA_ID,
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "role": "member",
        "personalProjectId": ADA_PROJECT_ID,
    }
)
class UserResponse(ApiStruct):
    id: uuid.UUID
    email: str
    name: str
    role: UserRole = UserRole.MEMBER
    personal_project_id: uuid.UUID | None = None


@example(
    {
        "token": EXAMPLE_JWT,
        "accessToken": EXAMPLE_JWT,
        "refreshToken": "kq3J0vXrQ7m9cX4N1l2b8YwZpD6fT0sHuVgE5aRyQxM",
        "expiresIn": 900,
        "tokenType": "Bearer",
    }
)
class TokenResponse(ApiStruct):
    """``token`` equals ``accessToken`` for clients written against the seed design."""

    token: str
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a secret


@example({"id": ADA_ID, "name": "Ada Lovelace", "email": "ada@example.com"})
class UserSummary(ApiStruct):
    """Someone the caller may add to a project: what a co-member sees."""

    id: uuid.UUID
    name: str
    email: str


@example({"name": "Ada Lovelace"})
class UpdateMeRequest(RequestStruct):
    name: Name


@example({"currentPassword": "my current pass 42", "newPassword": NEW_PASSWORD})
class ChangePasswordRequest(RequestStruct):
    current_password: Password
    new_password: Password


@example({"email": "ada@example.com"})
class PasswordResetRequest(RequestStruct):
    email: Email


@example(
    {
        "status": "accepted",
        "detail": "If an account uses this address, a reset link is on its way; it works once, "
        "for a limited time.",
    }
)
class PasswordResetAccepted(ApiStruct):
    """The same answer whether or not the address has an account."""

    status: str = "accepted"
    detail: str = (
        "If an account uses this address, a reset link is on its way; it works once, "
        "for a limited time."
    )


@example(
    {
        "token": "0f0e6c1b4c2d4a0e9d1f7b3a5c6d7e8f.kq3J0vXrQ7m9cX4N1l2b8YwZpD6fT0sHuVgE5aRyQxM",
        "newPassword": NEW_PASSWORD,
    }
)
class PasswordResetConfirm(RequestStruct):
    token: Token
    new_password: Password


ADMIN_USER_EXAMPLE = {
    "id": ADA_ID,
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "role": "member",
    "createdAt": "2026-11-02T09:15:00Z",
    "deactivatedAt": "2026-12-03T17:01:00Z",
}


@example(ADMIN_USER_EXAMPLE)
class AdminUser(ApiStruct):
    id: uuid.UUID
    email: str
    name: str
    role: UserRole
    created_at: datetime
    deactivated_at: datetime | None = None


@example({"items": [ADMIN_USER_EXAMPLE], "nextCursor": "eyJlbWFpbCI6ImFkYUBleGFtcGxlLmNvbSJ9"})
class AdminUserPage(ApiStruct):
    items: list[AdminUser]
    next_cursor: str | None = None
