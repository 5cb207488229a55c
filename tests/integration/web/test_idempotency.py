"""Idempotency-Key: same key and body -> the first response, published once."""

from __future__ import annotations

import uuid

from tests.integration.http_support import read_commands


async def test_same_key_same_body_replays_without_publishing_again(client, alice, api_settings):
    key = uuid.uuid4().hex
    headers = {**alice.headers, "Idempotency-Key": key}
    first = await client.post("/tasks", json={"title": "once"}, headers=headers)
    second = await client.post("/tasks", json={"title": "once"}, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    sentinel = (await client.post("/tasks", json={"title": "s"}, headers=alice.headers)).json()
    seen = await read_commands(api_settings, {uuid.UUID(sentinel["commandId"])}, collect_all=True)
    task_ids = [c.task_id for _, c, _ in seen.values()]
    assert task_ids.count(uuid.UUID(first.json()["taskId"])) == 1


async def test_same_key_different_body_is_422(client, alice):
    headers = {**alice.headers, "Idempotency-Key": uuid.uuid4().hex}
    assert (await client.post("/tasks", json={"title": "a"}, headers=headers)).status_code == 202
    other = await client.post("/tasks", json={"title": "b"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["errors"][0]["path"] == "Idempotency-Key"


async def test_keys_are_per_user_and_errors_replay_too(client, alice, bob):
    key = uuid.uuid4().hex
    a = await client.post(
        "/tasks", json={"title": "x"}, headers={**alice.headers, "Idempotency-Key": key}
    )
    b = await client.post(
        "/tasks", json={"title": "x"}, headers={**bob.headers, "Idempotency-Key": key}
    )
    assert a.status_code == b.status_code == 202
    assert a.json()["taskId"] != b.json()["taskId"]
    headers = {**alice.headers, "Idempotency-Key": uuid.uuid4().hex}
    body = {"title": "x", "projectId": bob.personal_project_id}
    first = await client.post("/tasks", json=body, headers=headers)
    second = await client.post("/tasks", json=body, headers=headers)
    assert first.status_code == second.status_code == 404


async def test_batch_with_a_key_replays_the_same_ids(client, alice):
    headers = {**alice.headers, "Idempotency-Key": uuid.uuid4().hex}
    body = {"tasks": [{"title": "a"}, {"title": "b"}]}
    first = await client.post("/tasks/batch", json=body, headers=headers)
    second = await client.post("/tasks/batch", json=body, headers=headers)
    assert first.status_code == 202 and first.json() == second.json()


async def test_registration_with_a_key_is_not_repeated(client):
    body = {
        "name": "Idem",
        "email": f"idem-{uuid.uuid4().hex[:8]}@example.com",
        "password": "correct horse 42 battery",
    }
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    first = await client.post("/auth/register", json=body, headers=headers)
    second = await client.post("/auth/register", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()


async def _redis_holds(app_redis, *secrets: str) -> bool:
    async for key in app_redis.scan_iter(match="taskstream:idem:*"):
        value = await app_redis.get(key)
        if value and any(s.encode() in value for s in secrets):
            return True
    return False


async def test_auth_routes_store_no_tokens_and_refresh_reuse_is_still_detected(
    client, app_redis, session_factory
):
    from tests.integration.http_support import PASSWORD, age_refresh_rotation

    email = f"idem-{uuid.uuid4().hex[:10]}@example.com"
    key = {"Idempotency-Key": uuid.uuid4().hex}
    registered = await client.post(
        "/auth/register", json={"name": "Idem", "email": email, "password": PASSWORD}, headers=key
    )
    assert registered.status_code == 201
    login = await client.post(
        "/auth/login", json={"email": email, "password": PASSWORD}, headers=key
    )
    assert login.status_code == 200
    tokens = login.json()
    refresh_key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"refreshToken": tokens["refreshToken"]}
    first = await client.post("/auth/refresh", json=body, headers=refresh_key)
    assert first.status_code == 200
    # past the reuse grace window (a retry within it gets the same pair, by design)
    await age_refresh_rotation(session_factory, tokens["refreshToken"], seconds=3600)
    again = await client.post("/auth/refresh", json=body, headers=refresh_key)
    assert again.status_code == 401, again.text  # reuse detected, not a replayed 200
    assert "idempotent-replayed" not in again.headers
    # the family is revoked: the token the first refresh issued no longer works
    rotated = {"refreshToken": first.json()["refreshToken"]}
    assert (await client.post("/auth/refresh", json=rotated)).status_code == 401
    secrets = [tokens["accessToken"], tokens["refreshToken"], first.json()["refreshToken"]]
    assert not await _redis_holds(app_redis, *secrets)
