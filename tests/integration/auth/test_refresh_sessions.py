"""Refresh sessions: concurrent refreshes share one rotation, late reuse revokes the family,
and a family ends at its absolute lifetime however often it is rotated."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from taskstream.app import create_app
from taskstream.auth.tokens import hash_refresh_token
from taskstream.settings import Settings
from tests.integration.http_support import register_and_login

GRACE_S = 1.0
MAX_AGE_S = 4


@pytest.fixture(scope="module")
async def short_client(
    api_settings: Settings, database: str, topics: object
) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose reuse grace window and session lifetime are short enough to outlive."""
    auth = api_settings.auth.model_copy(
        update={"refresh_reuse_grace_s": GRACE_S, "refresh_session_max_age_s": MAX_AGE_S}
    )
    app = create_app(api_settings.model_copy(update={"auth": auth}))
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
        yield client


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/refresh", json={"refreshToken": token})


async def test_concurrent_refreshes_get_the_same_pair_and_the_family_survives(served):
    client = served
    for _ in range(6):
        user = await register_and_login(client, "Tabs")
        first, second = await asyncio.gather(
            _refresh(client, user.refresh_token), _refresh(client, user.refresh_token)
        )
        assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
        assert first.json() == second.json()
        pair = first.json()
        assert pair["refreshToken"] != user.refresh_token
        me = await client.get(
            "/users/me", headers={"Authorization": f"Bearer {pair['accessToken']}"}
        )
        assert me.status_code == 200
        # the family lives on: the shared new token rotates normally
        onward = await _refresh(client, pair["refreshToken"])
        assert onward.status_code == 200, onward.text


async def test_a_retry_within_the_window_gets_the_same_pair(client):
    user = await register_and_login(client, "Retry")
    first = await _refresh(client, user.refresh_token)
    retry = await _refresh(client, user.refresh_token)
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()


async def test_the_issued_pair_is_stored_sealed_not_in_plaintext(client, session_factory):
    user = await register_and_login(client, "Sealed")
    pair = (await _refresh(client, user.refresh_token)).json()
    async with session_factory() as session:
        rows = (
            await session.execute(
                text("SELECT * FROM refresh_sessions WHERE user_id = :u"), {"u": user.id}
            )
        ).all()
    dump = repr(rows).encode()
    for secret in (pair["refreshToken"], pair["accessToken"], user.refresh_token):
        assert secret.encode() not in dump
    assert hash_refresh_token(user.refresh_token).encode() in dump  # lookups stay hashed


async def test_reuse_after_the_grace_window_revokes_the_family(short_client):
    user = await register_and_login(short_client, "Late")
    rotated = await _refresh(short_client, user.refresh_token)
    assert rotated.status_code == 200
    await asyncio.sleep(GRACE_S + 0.5)
    reused = await _refresh(short_client, user.refresh_token)
    assert reused.status_code == 401
    assert "reuse" in reused.json()["detail"].lower()
    # the whole family is revoked: the legitimately rotated token is dead too
    after = await _refresh(short_client, rotated.json()["refreshToken"])
    assert after.status_code == 401


async def test_a_session_ends_at_its_absolute_lifetime_despite_rotation(short_client):
    user = await register_and_login(short_client, "Forever")
    token = user.refresh_token
    deadline = asyncio.get_running_loop().time() + MAX_AGE_S
    while asyncio.get_running_loop().time() < deadline - 1:
        response = await _refresh(short_client, token)
        assert response.status_code == 200, response.text
        token = response.json()["refreshToken"]
        await asyncio.sleep(0.5)
    await asyncio.sleep(max(0.0, deadline - asyncio.get_running_loop().time()) + 0.5)
    expired = await _refresh(short_client, token)
    assert expired.status_code == 401
    # a fresh login starts a new session
    relogin = await register_and_login(short_client, "Again")
    assert (await _refresh(short_client, relogin.refresh_token)).status_code == 200
