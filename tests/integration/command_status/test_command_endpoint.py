"""`GET /commands/{id}` through the real app: 202 -> accepted -> (applied by the consumer's
service) -> applied; other users get 404; `?wait=N` returns once the batch commits."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

from taskstream.db import create_engine, create_session_factory, transaction
from taskstream.tasks.apply import apply_task_commands
from tests.integration.http_support import read_commands


async def _create(client, user) -> dict:
    response = await client.post("/tasks", json={"title": "status me"}, headers=user.headers)
    assert response.status_code == 202, response.text
    return response.json()


async def _apply(api_settings, session_factory, command_id: uuid.UUID) -> None:
    found = await read_commands(api_settings, {command_id})
    async with transaction(session_factory) as session:
        await apply_task_commands(session, [found[command_id][1]])


async def test_accepted_then_applied_and_hidden_from_others(
    client, alice, bob, api_settings, session_factory
):
    body = await _create(client, alice)
    url = f"/commands/{body['commandId']}"
    accepted = await client.get(url, headers=alice.headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {
        "commandId": body["commandId"],
        "status": "accepted",
        "taskId": body["taskId"],
    }
    hidden = await client.get(url, headers=bob.headers)
    assert hidden.status_code == 404
    assert hidden.headers["content-type"].startswith("application/problem+json")
    assert (await client.get(f"/commands/{uuid.uuid4()}", headers=alice.headers)).status_code == (
        404
    )
    assert (await client.get(url)).status_code == 401

    await _apply(api_settings, session_factory, uuid.UUID(body["commandId"]))
    applied = await client.get(url, headers=alice.headers)
    assert applied.json()["status"] == "applied"


async def test_wait_returns_when_applied(client, alice, api_settings):
    body = await _create(client, alice)
    command_id = uuid.UUID(body["commandId"])
    command = (await read_commands(api_settings, {command_id}))[command_id][1]

    async def apply_soon() -> None:
        # Its own loop and engine: the test client blocks this loop while the request waits.
        await asyncio.sleep(0.5)
        engine = create_engine(api_settings.db)
        try:
            async with transaction(create_session_factory(engine)) as session:
                await apply_task_commands(session, [command])
        finally:
            await engine.dispose()

    applier = threading.Thread(target=asyncio.run, args=(apply_soon(),))
    started = time.monotonic()
    applier.start()
    response = await client.get(f"/commands/{command_id}?wait=20", headers=alice.headers)
    applier.join()
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "applied"
    assert time.monotonic() - started < 10


async def test_wait_is_bounded(client, alice):
    body = await _create(client, alice)
    started = time.monotonic()
    response = await client.get(f"/commands/{body['commandId']}?wait=0.3", headers=alice.headers)
    assert response.json()["status"] == "accepted"
    assert 0.3 <= time.monotonic() - started < 5
    assert (
        await client.get(f"/commands/{body['commandId']}?wait=-1", headers=alice.headers)
    ).status_code == 422
