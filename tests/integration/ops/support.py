"""Admins for the ops tests: registered through the API, promoted in the database (the way
an operator bootstraps the first admin), then logged in so the token carries the role."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from tests.integration.http_support import PASSWORD, ApiUser, register_and_login


async def promote(dsn_or_factory: object, user_id: str) -> None:
    async with dsn_or_factory() as session:  # type: ignore[operator]
        await session.execute(
            text("UPDATE users SET role = 'admin' WHERE id = :id"), {"id": user_id}
        )
        await session.commit()


async def register_admin(client: httpx.AsyncClient, session_factory: object) -> ApiUser:
    user = await register_and_login(client, "Admin")
    await promote(session_factory, user.id)
    login = await client.post("/auth/login", json={"email": user.email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    user.token = login.json()["accessToken"]
    return user
