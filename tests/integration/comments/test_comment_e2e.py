"""The whole path with real processes: a task created through the API and applied by the
consumer, a comment with a mention, the outbox relay, RabbitMQ and the in-app worker; the
notifications read back through the API by the people they are for."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.http_support import join_project
from tests.integration.notifications.conftest import (  # noqa: F401 - fixtures
    cleanup_rabbit,
    notif_settings,
    processes,
    wait_for,
)
from tests.integration.notifications.test_api_e2e import (  # noqa: F401 - fixtures
    api,
    e2e_settings,
    inbox,
    register,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("cleanup_rabbit")]


async def test_a_comment_notifies_the_tasks_people_and_the_mentioned_through_the_pipeline(
    api: httpx.AsyncClient,  # noqa: F811
) -> None:
    _, owner = await register(api, "Owner")
    alice_id, alice = await register(api, "Alice")
    _, bob = await register(api, "Bob")
    carol_id, carol = await register(api, "Carol")
    stranger_id, stranger = await register(api, "Stranger")
    project = await api.post("/projects", json={"name": "Launch"}, headers=owner)
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]
    for headers in (alice, bob, carol):
        email = (await api.get("/users/me", headers=headers)).json()["email"]
        await join_project(api, project_id, owner, email, headers)
    created = await api.post(
        "/tasks",
        json={"title": "Ship v1", "projectId": project_id, "assigneeId": alice_id},
        headers=owner,
    )
    assert created.status_code == 202, created.text
    task_id, command_id = created.json()["taskId"], created.json()["commandId"]
    settled = await api.get(f"/commands/{command_id}", params={"wait": 20}, headers=owner)
    assert settled.json()["status"] == "applied", settled.text

    body = f"<@{carol_id}> <@{stranger_id}> please look"
    comment = await api.post(f"/tasks/{task_id}/comments", json={"body": body}, headers=bob)
    assert comment.status_code == 201, comment.text

    async def has(headers: dict[str, str], event_type: str) -> list[dict]:
        return [n for n in (await inbox(api, headers))["items"] if n["eventType"] == event_type]

    # the assignee and the creator hear of the comment; carol, mentioned, hears of that
    [to_alice] = await wait_for(lambda: has(alice, "task.commented"), timeout=60, what="alice")
    await wait_for(lambda: has(owner, "task.commented"), timeout=60, what="owner")
    [to_carol] = await wait_for(lambda: has(carol, "task.mentioned"), timeout=60, what="carol")
    assert to_alice["title"] == "New comment on Ship v1"
    assert to_carol["title"] == "You were mentioned on Ship v1"
    assert to_carol["data"]["commentId"] == comment.json()["id"]
    # everything the worker had for this comment is delivered: the author and the stranger
    # got nothing, carol no task.commented (she is not named on the task)
    assert await has(bob, "task.commented") == []
    assert await has(carol, "task.commented") == []
    assert [
        n for n in (await inbox(api, stranger))["items"] if n["eventType"] != "user.created"
    ] == []
