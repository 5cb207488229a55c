"""Helpers of the account tests: shared projects, administrators, reset tokens."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.auth.models import PasswordReset
from taskstream.auth.reset_tokens import reset_token
from taskstream.auth.service import create_admin
from taskstream.db import transaction
from taskstream.enums import ProjectRole
from taskstream.projects.models import Project, ProjectMember
from taskstream.settings import AuthSettings
from tests.integration.http_support import PASSWORD, ApiUser

PROBLEM = "application/problem+json"
NEW_PASSWORD = "a brand new pass 77"


async def share_project(
    session_factory: async_sessionmaker[AsyncSession], owner: ApiUser, *members: ApiUser
) -> uuid.UUID:
    """A project of ``owner`` with ``members`` in it (rows written directly: these tests are
    about accounts, not about how members join)."""
    project_id = uuid.uuid4()
    async with transaction(session_factory) as session:
        session.add(Project(id=project_id, name="Shared", owner_id=uuid.UUID(owner.id)))
        await session.flush()
        session.add(
            ProjectMember(
                project_id=project_id, user_id=uuid.UUID(owner.id), role=ProjectRole.OWNER
            )
        )
        session.add_all(
            ProjectMember(project_id=project_id, user_id=uuid.UUID(m.id), role=ProjectRole.MEMBER)
            for m in members
        )
    return project_id


async def login_admin(
    client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> ApiUser:
    """A new administrator (through the same service as `taskstream users create-admin`),
    logged in."""
    email = f"admin-{uuid.uuid4().hex[:10]}@example.com"
    async with session_factory() as session:
        assert await create_admin(session, email, "Root", PASSWORD) == "created"
    login = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    me = await client.get(
        "/users/me", headers={"Authorization": f"Bearer {login.json()['accessToken']}"}
    )
    tokens, body = login.json(), me.json()
    return ApiUser(
        body["id"], email, tokens["accessToken"], tokens["refreshToken"], body["personalProjectId"]
    )


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/auth/login", json={"email": email, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def resets_of(
    session_factory: async_sessionmaker[AsyncSession], user_id: str
) -> list[PasswordReset]:
    async with session_factory() as session:
        rows = await session.scalars(
            select(PasswordReset)
            .where(PasswordReset.user_id == uuid.UUID(user_id))
            .order_by(PasswordReset.created_at)
        )
        return list(rows)


async def latest_reset_token(
    session_factory: async_sessionmaker[AsyncSession], auth: AuthSettings, user_id: str
) -> tuple[uuid.UUID, str]:
    """The newest reset of the user and its token, derived as the email renderer does."""
    resets = await resets_of(session_factory, user_id)
    assert resets, "a reset row exists"
    return resets[-1].id, reset_token(auth, resets[-1].id)


async def expire_reset(
    session_factory: async_sessionmaker[AsyncSession], reset_id: uuid.UUID
) -> None:
    async with session_factory() as session:
        await session.execute(
            text(
                "UPDATE password_resets SET expires_at = now() - interval '1 second' WHERE id = :i"
            ),
            {"i": reset_id},
        )
        await session.commit()
