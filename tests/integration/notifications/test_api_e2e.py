"""The whole path with real processes: API -> Kafka -> consumer -> outbox -> relay -> RabbitMQ ->
worker -> notifications, read back through the API and pushed on the SSE stream."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from taskstream.infra.topics import delete_topics, ensure_topics, topic_names
from taskstream.settings import Settings
from tests.integration.http_support import join_project
from tests.integration.notifications.conftest import Processes, env_for, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("cleanup_rabbit")]
PASSWORD = "correct horse 42 battery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def e2e_settings(notif_settings: Settings) -> AsyncIterator[Settings]:
    """Own command/event topics and consumer group, relaxed limits, a free API port."""
    tag = uuid.uuid4().hex[:8]
    kafka = notif_settings.kafka.model_copy(
        update={
            "task_commands_topic": f"task-commands-n{tag}",
            "task_commands_dlq_topic": f"task-commands-n{tag}.dlq",
            "task_events_topic": f"task-events-n{tag}",
            "consumer_group": f"taskstream-n{tag}",
            "partitions": 2,
        }
    )
    limits = notif_settings.limits.model_copy(
        update={
            "anonymous": "100000/minute",
            "login": "100000/minute",
            "registration": "100000/hour",
        }
    )
    api = notif_settings.api.model_copy(update={"port": _free_port(), "workers": 1})
    await ensure_topics(kafka)
    yield notif_settings.model_copy(update={"kafka": kafka, "limits": limits, "api": api})
    await delete_topics(kafka, topic_names(kafka))


@pytest.fixture
async def api(e2e_settings: Settings, processes: Processes) -> AsyncIterator[httpx.AsyncClient]:
    env = env_for(e2e_settings)
    processes.start("api", ["api"], env)
    processes.start("consumer", ["consume"], env)
    processes.start("relay", ["relay", "--sweep-interval", "0"], env)
    processes.start("worker", ["work", "--channels", "in_app"], env)
    base = f"http://127.0.0.1:{e2e_settings.api.port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:

        async def healthy() -> bool:
            try:
                return (await client.get("/health")).status_code < 500
            except httpx.TransportError:
                return False

        await wait_for(healthy, what="API up")
        yield client


async def register(client: httpx.AsyncClient, name: str) -> tuple[str, dict[str, str]]:
    email = f"{name.lower()}-{uuid.uuid4().hex[:10]}@example.com"
    reg = await client.post(
        "/auth/register", json={"name": name, "email": email, "password": PASSWORD}
    )
    assert reg.status_code == 201, reg.text
    login = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return reg.json()["id"], {"Authorization": f"Bearer {login.json()['accessToken']}"}


async def collect_sse(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    into: list[dict[str, Any]],
    ready: asyncio.Event,
) -> None:
    async with client.stream(
        "GET", "/notifications/stream", headers=headers, timeout=None
    ) as response:
        assert response.status_code == 200
        ready.set()
        async for line in response.aiter_lines():
            payload = line[5:].strip() if line.startswith("data:") else ""
            if payload:
                into.append(json.loads(payload))


async def inbox(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> dict:
    response = await client.get("/notifications", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_task_create_assign_complete_through_the_api(api: httpx.AsyncClient) -> None:
    _, owner = await register(api, "Owner")
    alice_id, alice = await register(api, "Alice")
    bob_id, bob = await register(api, "Bob")
    project = await api.post("/projects", json={"name": "Launch"}, headers=owner)
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]
    for headers in (alice, bob):
        email = (await api.get("/users/me", headers=headers)).json()["email"]
        await join_project(api, project_id, owner, email, headers)

    pushed: list[dict[str, Any]] = []
    ready = asyncio.Event()
    stream = asyncio.create_task(collect_sse(api, alice, pushed, ready))
    await asyncio.wait_for(ready.wait(), 10)

    created = await api.post(
        "/tasks",
        json={"title": "Ship v1", "projectId": project_id, "assigneeId": alice_id},
        headers=owner,
    )
    assert created.status_code == 202, created.text
    task_id = created.json()["taskId"]

    async def alice_has(event_type: str):
        items = (await inbox(api, alice))["items"]
        return [n for n in items if n["eventType"] == event_type]

    # Created with an assignee: alice hears task.assigned (task.created goes to managers).
    await wait_for(lambda: alice_has("task.assigned"), timeout=60, what="alice: task.assigned")

    # Commands on one task share a Kafka partition (keyed by task id), so they apply in order;
    # each step waits for the notification it must produce.
    async def has(headers: dict[str, str], event_type: str, count: int = 1):
        items = (await inbox(api, headers))["items"]
        return len([n for n in items if n["eventType"] == event_type]) >= count

    steps = [
        (owner, "assign", {"assigneeId": bob_id}, bob, "task.assigned", 1),
        (bob, "transition", {"to": "in_progress"}, owner, "task.status_changed", 1),
        (bob, "transition", {"to": "done"}, owner, "task.completed", 1),
    ]
    for headers, action, body, watcher, event_type, count in steps:
        response = await api.post(f"/tasks/{task_id}/{action}", json=body, headers=headers)
        assert response.status_code == 202, response.text
        await wait_for(
            lambda w=watcher, t=event_type, c=count: has(w, t, c),
            timeout=60,
            what=f"{event_type} after {action}",
        )
    await wait_for(lambda: has(owner, "task.status_changed", 2), what="second status change")

    def types(page: dict) -> list[str]:
        return sorted(n["eventType"] for n in page["items"])

    alice_page = await inbox(api, alice)
    bob_page = await inbox(api, bob)
    owner_page = await inbox(api, owner)
    # invited (by the owner); accepting is their own act, so no member_added for them
    assert types(alice_page) == ["project.member_invited", "task.assigned", "task.assigned"]
    assert types(bob_page) == ["project.member_invited", "task.assigned"]
    # The owner acted on create and assign (nothing for those); bob acted on the rest.
    assert types(owner_page) == ["task.completed", "task.status_changed", "task.status_changed"]

    async def pushed_both() -> bool:
        return [p["eventType"] for p in pushed].count("task.assigned") >= 2

    await wait_for(pushed_both, what="SSE pushes to alice")
    stream.cancel()

    # Read state and pagination through the API.
    first = alice_page["items"][0]
    marked = await api.post(f"/notifications/{first['id']}/read", headers=alice)
    assert marked.status_code == 200 and marked.json()["readAt"] is not None
    unread = await inbox(api, alice, unread="true")
    assert first["id"] not in {n["id"] for n in unread["items"]}
    assert unread["unreadCount"] == 2
    page1 = await inbox(api, alice, limit=2)
    page2 = await inbox(api, alice, limit=2, cursor=page1["nextCursor"])
    assert page2["nextCursor"] is None
    seen = [n["id"] for n in page1["items"] + page2["items"]]
    assert sorted(seen) == sorted(n["id"] for n in alice_page["items"])
    other = await api.post(f"/notifications/{first['id']}/read", headers=bob)
    assert other.status_code == 404
    read_all = await api.post("/notifications/read-all", headers=alice)
    assert read_all.json() == {"markedRead": 2}
    assert (await inbox(api, alice))["unreadCount"] == 0


async def test_preferences_and_webhook_endpoints(api: httpx.AsyncClient) -> None:
    _, owner = await register(api, "Owner")
    _, stranger = await register(api, "Stranger")
    prefs = await api.get("/users/me/notification-preferences", headers=owner)
    assert prefs.status_code == 200
    matrix = {(p["eventType"], p["channel"]): p["enabled"] for p in prefs.json()["items"]}
    assert matrix[("task.assigned", "email")] is True
    assert matrix[("task.updated", "email")] is False
    put = await api.put(
        "/users/me/notification-preferences",
        json={"items": [{"eventType": "task.assigned", "channel": "email", "enabled": False}]},
        headers=owner,
    )
    assert put.status_code == 200, put.text
    matrix = {(p["eventType"], p["channel"]): p["enabled"] for p in put.json()["items"]}
    assert matrix[("task.assigned", "email")] is False
    bad = await api.put(
        "/users/me/notification-preferences",
        json={"items": [{"eventType": "nope", "channel": "email", "enabled": True}]},
        headers=owner,
    )
    assert bad.status_code == 422

    project_id = (await api.post("/projects", json={"name": "Hooks"}, headers=owner)).json()["id"]
    hook = {
        "url": "http://127.0.0.1:9/hook",
        "events": ["task.created"],
        "secret": "0123456789abcdef0123",
    }
    created = await api.post(f"/projects/{project_id}/webhooks", json=hook, headers=owner)
    assert created.status_code == 201, created.text
    webhook_id = created.json()["id"]
    assert "secret" not in created.json()
    assert (
        await api.post(f"/projects/{project_id}/webhooks", json=hook, headers=stranger)
    ).status_code == 404
    invalid = await api.post(
        f"/projects/{project_id}/webhooks", json={**hook, "events": ["task.nope"]}, headers=owner
    )
    assert invalid.status_code == 422
    listed = await api.get(f"/projects/{project_id}/webhooks", headers=owner)
    assert [w["id"] for w in listed.json()] == [webhook_id]
    deliveries = await api.get(
        f"/projects/{project_id}/webhooks/{webhook_id}/deliveries", headers=owner
    )
    assert deliveries.status_code == 200 and deliveries.json() == []
    gone = await api.delete(f"/projects/{project_id}/webhooks/{webhook_id}", headers=owner)
    assert gone.status_code == 204
    assert (await api.get(f"/projects/{project_id}/webhooks", headers=owner)).json() == []
