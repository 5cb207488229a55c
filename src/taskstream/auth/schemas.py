"""Request and response bodies of the auth routes (camelCase JSON)."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec

from taskstream.enums import UserRole

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=320, examples=["ada@example.com"])]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class ApiStruct(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=False):
    """Base of HTTP contracts: camelCase JSON."""


class RegisterRequest(ApiStruct):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    email: Email
    password: Password


class LoginRequest(ApiStruct):
    email: Email
    password: Password


class RefreshRequest(ApiStruct):
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class LogoutRequest(ApiStruct):
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


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
