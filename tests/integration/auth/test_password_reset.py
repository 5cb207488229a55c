"""POST /auth/password-reset and /auth/password-reset/confirm (tokens derived from the rows
as the email renderer derives them; test_reset_email.py goes through the real email path)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from taskstream.auth.reset_tokens import reset_id_of, reset_token
from tests.integration.auth.accounts_support import (
    NEW_PASSWORD,
    PROBLEM,
    expire_reset,
    latest_reset_token,
    login,
    resets_of,
)
from tests.integration.http_support import PASSWORD, register_and_login


async def _request(client, email: str):
    return await client.post("/auth/password-reset", json={"email": email})


async def _confirm(client, token: str, password: str = NEW_PASSWORD):
    return await client.post(
        "/auth/password-reset/confirm", json={"token": token, "newPassword": password}
    )


async def _reset_events(session_factory, user_id: str) -> list[str]:
    async with session_factory() as session:
        return list(
            (
                await session.execute(
                    text(
                        "SELECT convert_from(payload, 'UTF8') FROM outbox WHERE aggregate_id = :u"
                        " AND event_type = 'user.password_reset_requested'"
                    ),
                    {"u": user_id},
                )
            ).scalars()
        )


async def test_known_and_unknown_addresses_get_the_same_202(client, session_factory):
    alice = await register_and_login(client, "Alice")
    known = await _request(client, alice.email.upper())
    unknown = await _request(client, f"ghost-{uuid.uuid4().hex[:8]}@example.com")
    assert known.status_code == unknown.status_code == 202
    assert known.content == unknown.content
    assert known.headers["content-type"] == unknown.headers["content-type"]
    assert len(await resets_of(session_factory, alice.id)) == 1
    async with session_factory() as session:
        ghost_events = await session.scalar(
            text("SELECT count(*) FROM outbox WHERE convert_from(payload, 'UTF8') LIKE '%ghost-%'")
        )
    assert ghost_events == 0


async def test_the_event_carries_the_reset_id_and_never_the_token(
    client, session_factory, api_settings
):
    alice = await register_and_login(client, "Alice")
    await _request(client, alice.email)
    reset_id, token = await latest_reset_token(session_factory, api_settings.auth, alice.id)
    [payload] = await _reset_events(session_factory, alice.id)
    assert str(reset_id) in payload
    assert token not in payload and token.split(".")[1] not in payload


async def test_a_reset_token_works_once_and_ends_every_session(
    client, session_factory, api_settings
):
    alice = await register_and_login(client, "Alice")
    await _request(client, alice.email)
    _, token = await latest_reset_token(session_factory, api_settings.auth, alice.id)
    confirmed = await _confirm(client, token)
    assert confirmed.status_code == 204, confirmed.text
    assert (await login(client, alice.email)).status_code == 401
    assert (await login(client, alice.email, NEW_PASSWORD)).status_code == 200
    assert (await client.get("/users/me", headers=alice.headers)).status_code == 401
    refresh = await client.post("/auth/refresh", json={"refreshToken": alice.refresh_token})
    assert refresh.status_code == 401
    again = await _confirm(client, token, "yet another pass 99")
    assert again.status_code == 422
    assert again.headers["content-type"].startswith(PROBLEM)
    assert [e["path"] for e in again.json()["errors"]] == ["token"]
    assert (await login(client, alice.email, NEW_PASSWORD)).status_code == 200


async def test_an_expired_token_is_refused(client, session_factory, api_settings):
    alice = await register_and_login(client, "Alice")
    await _request(client, alice.email)
    reset_id, token = await latest_reset_token(session_factory, api_settings.auth, alice.id)
    await expire_reset(session_factory, reset_id)
    response = await _confirm(client, token)
    assert response.status_code == 422
    assert (await login(client, alice.email)).status_code == 200


async def test_a_weak_password_leaves_the_token_usable(client, session_factory, api_settings):
    alice = await register_and_login(client, "Alice")
    await _request(client, alice.email)
    _, token = await latest_reset_token(session_factory, api_settings.auth, alice.id)
    weak = await _confirm(client, token, "password")
    assert weak.status_code == 422
    assert {e["path"] for e in weak.json()["errors"]} == {"newPassword"}
    assert (await _confirm(client, token)).status_code == 204


async def test_a_password_change_voids_pending_resets(client, session_factory, api_settings):
    alice = await register_and_login(client, "Alice")
    await _request(client, alice.email)
    _, token = await latest_reset_token(session_factory, api_settings.auth, alice.id)
    changed = await client.post(
        "/users/me/password",
        json={"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD},
        headers=alice.headers,
    )
    assert changed.status_code == 200
    assert (await _confirm(client, token, "yet another pass 99")).status_code == 422


async def test_forged_tokens_are_refused(client, session_factory, api_settings):
    alice = await register_and_login(client, "Alice")
    await _request(client, alice.email)
    reset_id, token = await latest_reset_token(session_factory, api_settings.auth, alice.id)
    other_key = api_settings.auth.model_copy(update={"jwt_secret": SecretStr("another-secret" * 4)})
    forged = [
        reset_token(other_key, reset_id),  # right id, MAC under another key
        f"{uuid.uuid4().hex}.{token.split('.')[1]}",  # the MAC of another id
        reset_id.hex,
        token + "A",
        "not-a-token",
        "\u00e9" * 76,
    ]
    for candidate in forged:
        response = await _confirm(client, candidate)
        assert response.status_code == 422, (candidate, response.text)
    assert reset_id_of(api_settings.auth, token) == reset_id
    assert (await _confirm(client, token)).status_code == 204


async def test_requests_per_address_are_limited_silently(client, session_factory, api_settings):
    alice = await register_and_login(client, "Alice")
    allowed = api_settings.auth.password_reset_per_address
    answers = [await _request(client, alice.email) for _ in range(allowed + 2)]
    assert {a.status_code for a in answers} == {202}
    assert len({a.content for a in answers}) == 1
    assert len(await resets_of(session_factory, alice.id)) == allowed


async def test_a_deactivated_account_gets_no_reset(client, session_factory):
    alice = await register_and_login(client, "Alice")
    async with session_factory() as session:
        await session.execute(
            text("UPDATE users SET deleted_at = now() WHERE id = :i"), {"i": alice.id}
        )
        await session.commit()
    assert (await _request(client, alice.email)).status_code == 202
    assert await resets_of(session_factory, alice.id) == []


async def test_concurrent_confirmations_exactly_one_succeeds(served, session_factory, api_settings):
    alice = await register_and_login(served, "Alice")
    assert (await _request(served, alice.email)).status_code == 202

    async def requested():
        for _ in range(100):
            if await resets_of(session_factory, alice.id):
                return
            await asyncio.sleep(0.05)

    await requested()  # the row is written after the answer, by the serving process
    _, token = await latest_reset_token(session_factory, api_settings.auth, alice.id)
    answers = await asyncio.gather(
        *(_confirm(served, token, f"parallel pass {i} x!") for i in range(6))
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [204] + [422] * 5, [a.text for a in answers]
    winner = next(i for i, a in enumerate(answers) if a.status_code == 204)
    assert (await login(served, alice.email, f"parallel pass {winner} x!")).status_code == 200


@pytest.mark.parametrize(
    "body",
    [None, {}, {"email": "a\x00b@example.com"}, {"email": "x" * 321}, {"email": 5}, {"email": ""}],
    ids=["no-body", "empty", "nul", "overlong", "number", "blank"],
)
async def test_bad_reset_requests_are_4xx(client, body):
    response = await client.post("/auth/password-reset", json=body)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith(PROBLEM)


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"token": "abc"},
        {"token": "a\x00b", "newPassword": NEW_PASSWORD},
        {"token": "t" * 201, "newPassword": NEW_PASSWORD},
        {"token": 5, "newPassword": NEW_PASSWORD},
        {"token": "abc", "newPassword": ["x"]},
    ],
    ids=["no-body", "empty", "no-password", "nul", "overlong", "number", "list"],
)
async def test_bad_confirmations_are_4xx(client, body):
    response = await client.post("/auth/password-reset/confirm", json=body)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_reset_routes_are_rate_limited_per_client(api_app, api_settings):
    """The per-address login limit (here 3/minute) applies to both routes."""
    from litestar.testing import AsyncTestClient

    from taskstream.app import create_app
    from tests.integration.http_support import relaxed_limits

    strict = relaxed_limits(api_settings, login="3/minute")
    async with AsyncTestClient(app=create_app(strict), raise_server_exceptions=False) as client:
        statuses = [(await _request(client, f"r-{i}@example.com")).status_code for i in range(4)]
        assert statuses == [202, 202, 202, 429]
        limited = await _confirm(client, "whatever")
        assert limited.status_code == 429
        assert limited.headers["content-type"].startswith(PROBLEM)
