"""GET /users?email=, PATCH /users/me and POST /users/me/password."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from sqlalchemy import text

from taskstream.auth import accounts, service
from taskstream.auth.tokens import TokenCodec
from taskstream.enums import UserRole
from taskstream.errors import UnauthorizedError
from taskstream.principal import Principal
from tests.integration.auth.accounts_support import (
    NEW_PASSWORD,
    PROBLEM,
    bearer,
    login,
    login_admin,
    share_project,
)
from tests.integration.http_support import PASSWORD, ApiUser, register_and_login

# --- GET /users?email= ---------------------------------------------------------------------


async def test_a_co_member_finds_a_user_by_exact_email_in_any_case(client, session_factory):
    alice = await register_and_login(client, "Alice")
    bob = await register_and_login(client, "Bob")
    await share_project(session_factory, alice, bob)
    response = await client.get(
        "/users", params={"email": f"  {bob.email.upper()} "}, headers=alice.headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == [{"id": bob.id, "name": "Bob", "email": bob.email}]
    # a prefix or a near miss is not a match
    partial = await client.get("/users", params={"email": bob.email[:-1]}, headers=alice.headers)
    assert partial.json() == []


async def test_a_stranger_gets_the_same_answer_as_for_an_unknown_address(client):
    alice = await register_and_login(client, "Alice")
    carol = await register_and_login(client, "Carol")
    stranger = await client.get("/users", params={"email": carol.email}, headers=alice.headers)
    unknown = await client.get(
        "/users", params={"email": "nobody-here@example.com"}, headers=alice.headers
    )
    assert stranger.status_code == unknown.status_code == 200
    assert stranger.content == unknown.content == b"[]"


async def test_an_admin_finds_anyone_and_a_user_finds_themselves(client, session_factory):
    carol = await register_and_login(client, "Carol")
    admin = await login_admin(client, session_factory)
    found = await client.get("/users", params={"email": carol.email}, headers=admin.headers)
    assert [u["id"] for u in found.json()] == [carol.id]
    me = await client.get("/users", params={"email": carol.email}, headers=carol.headers)
    assert [u["id"] for u in me.json()] == [carol.id]


async def test_a_deactivated_co_member_is_not_found(client, session_factory):
    alice = await register_and_login(client, "Alice")
    bob = await register_and_login(client, "Bob")
    await share_project(session_factory, alice, bob)
    async with session_factory() as session:
        await session.execute(
            text("UPDATE users SET deleted_at = now() WHERE id = :i"), {"i": bob.id}
        )
        await session.commit()
    response = await client.get("/users", params={"email": bob.email}, headers=alice.headers)
    assert response.json() == []


async def test_a_deleted_shared_project_no_longer_makes_a_user_findable(client, session_factory):
    alice = await register_and_login(client, "Alice")
    bob = await register_and_login(client, "Bob")
    project_id = await share_project(session_factory, alice, bob)
    deleted = await client.delete(f"/projects/{project_id}", headers=alice.headers)
    assert deleted.status_code == 204, deleted.text
    # the project is gone for both of them: they are strangers again
    response = await client.get("/users", params={"email": bob.email}, headers=alice.headers)
    assert response.status_code == 200
    assert response.json() == []


@pytest.mark.parametrize(
    "query",
    [{}, {"email": ""}, {"email": "a\x00b@example.com"}, {"email": "x" * 321}, {"email": "ab"}],
    ids=["missing", "empty", "nul", "overlong", "too-short"],
)
async def test_bad_email_queries_are_4xx_problems(client, alice: ApiUser, query):
    response = await client.get("/users", params=query, headers=alice.headers)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_lookup_needs_a_token(client):
    response = await client.get("/users", params={"email": "x@example.com"})
    assert response.status_code == 401


# --- PATCH /users/me -----------------------------------------------------------------------


async def test_rename_me_trims_and_is_seen_by_co_members(client, session_factory):
    alice = await register_and_login(client, "Alice")
    bob = await register_and_login(client, "Bob")
    await share_project(session_factory, alice, bob)
    response = await client.patch("/users/me", json={"name": "  Robert  "}, headers=bob.headers)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Robert"
    assert response.json()["personalProjectId"] == bob.personal_project_id
    seen = await client.get("/users", params={"email": bob.email}, headers=alice.headers)
    assert seen.json()[0]["name"] == "Robert"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (None, None),  # no body: a 4xx problem (which one is the edge's rule)
        ({}, 422),
        ({"name": ""}, 422),
        ({"name": "   "}, 422),
        ({"name": "A\x00B"}, 422),
        ({"name": "x" * 201}, 422),
        ({"name": 5}, 422),
        ({"name": ["Bob"]}, 422),
    ],
    ids=["no-body", "empty", "blank", "spaces", "nul", "overlong", "number", "list"],
)
async def test_rename_refuses_bad_input_and_changes_nothing(client, alice: ApiUser, body, status):
    response = await client.patch("/users/me", json=body, headers=alice.headers)
    if status is None:
        assert 400 <= response.status_code < 500, response.text
    else:
        assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    me = await client.get("/users/me", headers=alice.headers)
    assert me.json()["name"] == "Alice"


# --- POST /users/me/password ---------------------------------------------------------------


async def _second_session(client: httpx.AsyncClient, user: ApiUser) -> dict[str, str]:
    response = await login(client, user.email)
    assert response.status_code == 200
    return dict(response.json())


async def test_password_change_ends_every_other_session(client):
    alice = await register_and_login(client, "Alice")
    other = await _second_session(client, alice)
    response = await client.post(
        "/users/me/password",
        json={"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD},
        headers=alice.headers,
    )
    assert response.status_code == 200, response.text
    fresh = response.json()
    # the other session: refresh token revoked, access token refused
    refreshed = await client.post("/auth/refresh", json={"refreshToken": other["refreshToken"]})
    assert refreshed.status_code == 401
    assert (await client.get("/users/me", headers=bearer(other["accessToken"]))).status_code == 401
    # the caller's previous tokens too: it continues with the pair returned
    assert (await client.get("/users/me", headers=alice.headers)).status_code == 401
    old_refresh = await client.post("/auth/refresh", json={"refreshToken": alice.refresh_token})
    assert old_refresh.status_code == 401
    assert (await client.get("/users/me", headers=bearer(fresh["accessToken"]))).status_code == 200
    rotated = await client.post("/auth/refresh", json={"refreshToken": fresh["refreshToken"]})
    assert rotated.status_code == 200
    assert (await login(client, alice.email)).status_code == 401
    assert (await login(client, alice.email, NEW_PASSWORD)).status_code == 200


async def test_password_change_writes_one_event_without_secrets(client, session_factory):
    alice = await register_and_login(client, "Alice")
    await client.post(
        "/users/me/password",
        json={"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD},
        headers=alice.headers,
    )
    async with session_factory() as session:
        rows = (
            (
                await session.execute(
                    text(
                        "SELECT convert_from(payload, 'UTF8') FROM outbox"
                        " WHERE aggregate_id = :u AND event_type = 'user.password_changed'"
                    ),
                    {"u": alice.id},
                )
            )
            .scalars()
            .all()
        )
    assert len(rows) == 1
    assert NEW_PASSWORD not in rows[0] and PASSWORD not in rows[0]


async def test_wrong_current_password_is_422_and_counted_by_the_login_guard(client):
    alice = await register_and_login(client, "Alice")
    wrong = {"currentPassword": "not my password 1", "newPassword": NEW_PASSWORD}
    statuses = []
    for _ in range(6):
        response = await client.post("/users/me/password", json=wrong, headers=alice.headers)
        statuses.append(response.status_code)
    assert statuses == [422] * 5 + [429], statuses
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "retry-after" in {k.lower() for k in response.headers}
    # the same counter as login: this address is now refused for the account
    assert (await login(client, alice.email)).status_code == 429
    # and the right password through this route is refused as well while it lasts
    right = {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}
    blocked = await client.post("/users/me/password", json=right, headers=alice.headers)
    assert blocked.status_code == 429
    assert (await client.get("/users/me", headers=alice.headers)).status_code == 200


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"currentPassword": PASSWORD, "newPassword": "short1"}, "newPassword"),
        ({"currentPassword": PASSWORD, "newPassword": PASSWORD}, "newPassword"),
        ({"currentPassword": PASSWORD, "newPassword": "abc\x00defghijk1"}, None),
        ({"currentPassword": PASSWORD, "newPassword": "x1" * 129}, None),
        ({"currentPassword": PASSWORD}, None),
        ({"currentPassword": PASSWORD, "newPassword": 1234567890123}, None),
        ({}, None),
    ],
    ids=["weak", "same", "nul", "overlong", "missing", "number", "empty"],
)
async def test_bad_password_changes_are_422_and_change_nothing(client, alice: ApiUser, body, path):
    response = await client.post("/users/me/password", json=body, headers=alice.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    if path is not None:
        assert {e["path"] for e in response.json()["errors"]} == {path}
    assert (await client.get("/users/me", headers=alice.headers)).status_code == 200
    assert (await login(client, alice.email)).status_code == 200


async def test_password_change_without_body_or_token(client, alice: ApiUser):
    no_body = await client.post("/users/me/password", headers=alice.headers)
    assert 400 <= no_body.status_code < 500
    assert no_body.headers["content-type"].startswith(PROBLEM)
    anonymous = await client.post(
        "/users/me/password", json={"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}
    )
    assert anonymous.status_code == 401


async def test_other_processes_refuse_old_access_tokens_within_the_cache_window(served):
    """Served by two processes: the one that handled the change forgets at once, the other
    within its user-status cache window (10 s)."""
    alice = await register_and_login(served, "Alice")
    other = await _second_session(served, alice)
    for _ in range(4):  # both processes have the user cached now
        assert (
            await served.get("/users/me", headers=bearer(other["accessToken"]))
        ).status_code == 200
    changed = await served.post(
        "/users/me/password",
        json={"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD},
        headers=alice.headers,
    )
    assert changed.status_code == 200, changed.text
    deadline = time.monotonic() + 20  # far beyond the window: a failure is not a slow machine
    refused_in_a_row = 0
    while refused_in_a_row < 6:
        status = (await served.get("/users/me", headers=bearer(other["accessToken"]))).status_code
        refused_in_a_row = refused_in_a_row + 1 if status == 401 else 0
        assert time.monotonic() < deadline, "an old access token still works after 20 s"
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("start", ["refresh", "login"])
async def test_a_session_committing_during_a_password_change_does_not_survive_it(
    client, session_factory, api_settings, start
):
    """A refresh (or a login with the old password) that is about to commit when the
    password changes: the session it issues must be revoked too. Its commit is held open
    until the change is seen waiting on a lock, which is exactly the interleaving that loses
    a session when the change revokes from a snapshot taken before that commit."""
    alice = await register_and_login(client, "Alice")
    other = await _second_session(client, alice)
    codec = TokenCodec(api_settings.auth)
    reached, release = asyncio.Event(), asyncio.Event()

    async def held_session() -> service.TokenPair:
        async with session_factory() as session:
            commit = session.commit

            async def commit_when_released() -> None:
                reached.set()
                await release.wait()
                await commit()

            session.commit = commit_when_released  # type: ignore[method-assign]
            if start == "login":
                return await service.login(session, codec, alice.email, PASSWORD)
            return await service.refresh(session, codec, other["refreshToken"])

    async def change() -> service.TokenPair:
        async with session_factory() as session:
            principal = Principal(user_id=uuid.UUID(alice.id), role=UserRole.MEMBER)
            return await accounts.change_password(
                session,
                codec,
                principal,
                PASSWORD,
                NEW_PASSWORD,
                guard=None,
                address="test",
                statuses=None,
            )

    starting = asyncio.create_task(held_session())
    await asyncio.wait_for(reached.wait(), 10)
    changing = asyncio.create_task(change())

    async def change_is_waiting_on_a_lock() -> bool:
        async with session_factory() as session:
            waiting = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        return bool(waiting)

    for _ in range(200):
        if await change_is_waiting_on_a_lock() or changing.done():
            break
        await asyncio.sleep(0.05)
    release.set()
    started = await starting
    await changing
    async with session_factory() as session:
        with pytest.raises(UnauthorizedError):
            await service.refresh(session, codec, started.refresh_token)
