"""GET /admin/users, POST /admin/users/{id}/deactivate and /reactivate; create-admin and
deactivated accounts."""

from __future__ import annotations

import uuid

import pytest

from taskstream.auth.service import create_admin
from taskstream.errors import ConflictError
from tests.integration.auth.accounts_support import PROBLEM, bearer, login, login_admin
from tests.integration.http_support import register_and_login


async def test_admins_list_users_by_email_prefix_a_page_at_a_time(client, session_factory):
    admin = await login_admin(client, session_factory)
    tag = uuid.uuid4().hex[:8]
    people = [await register_and_login(client, f"Zz{tag}{i}") for i in range(3)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query: dict[str, object] = {"limit": 2, "email": f"ZZ{tag}"}
        if cursor:
            query["cursor"] = cursor
        response = await client.get("/admin/users", params=query, headers=admin.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= 2
        seen += [item["email"] for item in body["items"]]
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert pages == 2
    assert seen == [p.email for p in people]
    item = body["items"][0]
    assert set(item) == {"id", "email", "name", "role", "createdAt", "deactivatedAt"}


async def test_like_wildcards_in_the_prefix_are_literal(client, session_factory):
    admin = await login_admin(client, session_factory)
    for prefix in ("%", "_", "\\", "zz%"):
        response = await client.get("/admin/users", params={"email": prefix}, headers=admin.headers)
        assert response.status_code == 200
        assert response.json()["items"] == [], prefix
    everyone = await client.get("/admin/users", params={"limit": 500}, headers=admin.headers)
    assert len(everyone.json()["items"]) <= 200  # the page cap of every list


async def test_admin_routes_are_403_for_members(client, session_factory):
    alice = await register_and_login(client, "Alice")
    bob = await register_and_login(client, "Bob")
    for method, path in [
        ("GET", "/admin/users"),
        ("POST", f"/admin/users/{bob.id}/deactivate"),
        ("POST", f"/admin/users/{bob.id}/reactivate"),
    ]:
        response = await client.request(method, path, headers=alice.headers)
        assert response.status_code == 403, (path, response.text)
        assert response.headers["content-type"].startswith(PROBLEM)
    assert (await client.get("/users/me", headers=bob.headers)).status_code == 200
    assert (await client.get("/admin/users")).status_code == 401


async def test_deactivation_ends_login_refresh_and_tokens_and_reactivation_restores_login(
    client, session_factory
):
    admin = await login_admin(client, session_factory)
    bob = await register_and_login(client, "Bob")
    done = await client.post(f"/admin/users/{bob.id}/deactivate", headers=admin.headers)
    assert done.status_code == 200, done.text
    assert done.json()["deactivatedAt"] is not None
    assert (await client.get("/users/me", headers=bob.headers)).status_code == 401
    assert (await login(client, bob.email)).status_code == 401
    refresh = await client.post("/auth/refresh", json={"refreshToken": bob.refresh_token})
    assert refresh.status_code == 401
    reset = await client.post("/auth/password-reset", json={"email": bob.email})
    assert reset.status_code == 202
    # idempotent, and visible in the list
    again = await client.post(f"/admin/users/{bob.id}/deactivate", headers=admin.headers)
    assert again.status_code == 200
    assert again.json()["deactivatedAt"] == done.json()["deactivatedAt"]
    listed = await client.get("/admin/users", params={"email": bob.email}, headers=admin.headers)
    assert [i["deactivatedAt"] for i in listed.json()["items"]] == [done.json()["deactivatedAt"]]

    back = await client.post(f"/admin/users/{bob.id}/reactivate", headers=admin.headers)
    assert back.status_code == 200 and back.json()["deactivatedAt"] is None
    # old tokens stay dead; a new login works
    assert (await client.get("/users/me", headers=bob.headers)).status_code == 401
    assert (
        await client.post("/auth/refresh", json={"refreshToken": bob.refresh_token})
    ).status_code == 401
    relogin = await login(client, bob.email)
    assert relogin.status_code == 200
    assert (
        await client.get("/users/me", headers=bearer(relogin.json()["accessToken"]))
    ).status_code == 200


async def test_an_admin_cannot_deactivate_themselves(client, session_factory):
    admin = await login_admin(client, session_factory)
    response = await client.post(f"/admin/users/{admin.id}/deactivate", headers=admin.headers)
    assert response.status_code == 409
    assert response.headers["content-type"].startswith(PROBLEM)
    assert (await client.get("/users/me", headers=admin.headers)).status_code == 200


async def test_another_admin_is_deactivated_like_anyone(client, session_factory):
    first = await login_admin(client, session_factory)
    second = await login_admin(client, session_factory)
    response = await client.post(f"/admin/users/{second.id}/deactivate", headers=first.headers)
    assert response.status_code == 200
    assert (await client.get("/admin/users", headers=second.headers)).status_code == 401


@pytest.mark.parametrize("action", ["deactivate", "reactivate"])
async def test_unknown_and_malformed_ids(client, session_factory, action):
    admin = await login_admin(client, session_factory)
    unknown = await client.post(f"/admin/users/{uuid.uuid4()}/{action}", headers=admin.headers)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith(PROBLEM)
    malformed = await client.post(f"/admin/users/not-a-uuid/{action}", headers=admin.headers)
    assert 400 <= malformed.status_code < 500


@pytest.mark.parametrize(
    "query",
    [
        {"cursor": "%%%"},
        {"cursor": "AA"},
        {"cursor": "gA"},  # not UTF-8
        {"cursor": "AAA"},  # a NUL
        {"cursor": "x" * 201},
        {"limit": 0},
        {"limit": "ten"},
        {"email": "a\x00"},
        {"email": "x" * 321},
    ],
    ids=["junk", "short", "bytes", "nul-cursor", "long-cursor", "zero", "word", "nul", "long"],
)
async def test_bad_list_queries_are_4xx_problems(client, session_factory, query):
    admin = await login_admin(client, session_factory)
    response = await client.get("/admin/users", params=query, headers=admin.headers)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_create_admin_refuses_a_deactivated_account(client, session_factory):
    admin = await login_admin(client, session_factory)
    bob = await register_and_login(client, "Bob")
    await client.post(f"/admin/users/{bob.id}/deactivate", headers=admin.headers)
    async with session_factory() as session:
        with pytest.raises(ConflictError, match="deactivated"):
            await create_admin(session, bob.email, "Bob", "whatever pass 123")
    assert (await login(client, bob.email)).status_code == 401
