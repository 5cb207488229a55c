"""Request and response bodies of the auth routes (camelCase JSON)."""

from __future__ import annotations

import uuid

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
