"""Task commands (202 after the broker acked, readable from the topic) and task reads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from taskstream.messages import (
    AssignTask,
    CreateTask,
    DeleteTask,
    ReviewTask,
    TransitionTask,
    UpdateTask,
)
from tests.integration.http_support import ApiUser, insert_task, join_project, read_commands

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


async def test_create_task_publishes_a_command_keyed_by_task_id(
    client, alice, api_settings, app_redis
):
    deadline = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    response = await client.post(
        "/tasks",
        json={
            "title": "Ship it",
            "priority": "high",
            "deadline": deadline,
            "userId": str(uuid.uuid4()),
        },
        headers={**alice.headers, "traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    command_id = uuid.UUID(body["commandId"])
    key, command, headers = (await read_commands(api_settings, {command_id}))[command_id]
    assert key == body["taskId"].encode()
    assert isinstance(command.payload, CreateTask)
    assert str(command.payload.project_id) == alice.personal_project_id
    assert str(command.actor.user_id) == alice.id  # userId in the body is ignored
    assert command.payload.priority == "high"
    # the request's trace continues on the topic (a span of the API under the client's)
    assert headers["traceparent"].decode().split("-")[1] == TRACE
    assert headers["x-trace-id"] == TRACE.encode()  # for readers of the older header
    accepted = await app_redis.get(f"taskstream:cmd:{command_id}")
    assert accepted is not None and body["taskId"].encode() in accepted


async def test_an_older_clients_trace_id_is_kept(client, alice, api_settings):
    response = await client.post(
        "/tasks", json={"title": "Old client"}, headers={**alice.headers, "X-Trace-Id": TRACE}
    )
    assert response.status_code == 202, response.text
    assert response.headers["x-trace-id"] == TRACE
    command_id = uuid.UUID(response.json()["commandId"])
    _, _, headers = (await read_commands(api_settings, {command_id}))[command_id]
    assert headers["traceparent"].decode().split("-")[1] == TRACE


async def test_create_in_someone_elses_project_is_404(client, alice, bob):
    response = await client.post(
        "/tasks", json={"title": "x", "projectId": bob.personal_project_id}, headers=alice.headers
    )
    assert response.status_code == 404


async def test_every_command_on_an_existing_task(client, alice, bob, api_settings, session_factory):
    task_id = await insert_task(session_factory, alice.personal_project_id, alice.id)
    calls = [
        ("PATCH", f"/tasks/{task_id}", {"title": "Renamed", "deadline": None}, UpdateTask),
        ("POST", f"/tasks/{task_id}/assign", {"assigneeId": alice.id}, AssignTask),
        (
            "POST",
            f"/tasks/{task_id}/transition",
            {"to": "in_review", "reviewerId": alice.id},
            TransitionTask,
        ),
        ("POST", f"/tasks/{task_id}/reviews", {"verdict": "approve", "comment": "ok"}, ReviewTask),
        ("DELETE", f"/tasks/{task_id}", None, DeleteTask),
    ]
    expected = {}
    for method, path, payload, kind in calls:
        response = await client.request(method, path, json=payload, headers=alice.headers)
        assert response.status_code == 202, (path, response.text)
        assert response.json()["taskId"] == task_id
        expected[uuid.UUID(response.json()["commandId"])] = kind
        # another user's task is 404, never 403, never data
        foreign = await client.request(method, path, json=payload, headers=bob.headers)
        assert foreign.status_code == 404, (path, foreign.text)
    found = await read_commands(api_settings, set(expected))
    for command_id, kind in expected.items():
        key, command, _ = found[command_id]
        assert isinstance(command.payload, kind)
        assert key == task_id.encode()
    update = next(c for _, c, _ in found.values() if isinstance(c.payload, UpdateTask))
    assert update.payload.title == "Renamed" and update.payload.deadline is None


async def test_commands_right_after_create_are_authorised_before_the_row_exists(client, alice):
    created = (await client.post("/tasks", json={"title": "new"}, headers=alice.headers)).json()
    response = await client.post(
        f"/tasks/{created['taskId']}/transition", json={"to": "in_progress"}, headers=alice.headers
    )
    assert response.status_code == 202


async def test_unknown_task_is_404(client, alice):
    response = await client.patch(
        f"/tasks/{uuid.uuid4()}", json={"title": "x"}, headers=alice.headers
    )
    assert response.status_code == 404


async def test_viewer_cannot_send_commands(client, alice, bob, session_factory):
    await join_project(
        client, alice.personal_project_id, alice.headers, bob.email, bob.headers, "viewer"
    )
    task_id = await insert_task(session_factory, alice.personal_project_id, alice.id)
    assert (await client.get(f"/tasks/{task_id}", headers=bob.headers)).status_code == 200
    response = await client.post(
        f"/tasks/{task_id}/transition", json={"to": "done"}, headers=bob.headers
    )
    assert response.status_code == 403


async def test_get_task_and_authz(client, alice, bob, session_factory):
    task_id = await insert_task(session_factory, alice.personal_project_id, alice.id, title="Mine")
    mine = await client.get(f"/tasks/{task_id}", headers=alice.headers)
    assert mine.status_code == 200
    assert mine.json()["title"] == "Mine" and mine.json()["projectId"] == alice.personal_project_id
    theirs = await client.get(f"/tasks/{task_id}", headers=bob.headers)
    assert theirs.status_code == 404
    assert "Mine" not in theirs.text


async def test_list_tasks_filters_and_keyset_pages(client, alice, bob, session_factory):
    project = alice.personal_project_id
    soon = datetime.now(UTC) + timedelta(hours=1)
    ids = [
        await insert_task(
            session_factory,
            project,
            alice.id,
            title=f"t{i}",
            status="done" if i % 3 == 0 else "todo",
            priority="urgent" if i % 2 else "low",
            deadline=soon if i < 4 else None,
            assignee_id=bob.id if i == 5 else None,
        )
        for i in range(7)
    ]
    await insert_task(session_factory, bob.personal_project_id, bob.id, title="bob's")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/tasks", params=params, headers=alice.headers)).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert set(ids) <= set(seen) and len(seen) == len(set(seen))
    assert all(t["title"] != "bob's" for t in page["items"])

    async def ids_for(**params):
        response = await client.get(
            "/tasks", params={"projectId": project, **params}, headers=alice.headers
        )
        assert response.status_code == 200, response.text
        return {t["id"] for t in response.json()["items"]}

    assert await ids_for(status="done") == {ids[0], ids[3], ids[6]}
    assert await ids_for(priority="urgent") == {ids[1], ids[3], ids[5]}
    assert await ids_for(assigneeId=bob.id) == {ids[5]}
    due = (soon + timedelta(minutes=1)).isoformat()
    assert await ids_for(dueBefore=due) == set(ids[:4])
    foreign = await client.get(
        "/tasks", params={"projectId": bob.personal_project_id}, headers=alice.headers
    )
    assert foreign.status_code == 404
    bad_cursor = await client.get("/tasks", params={"cursor": "!!"}, headers=alice.headers)
    assert bad_cursor.status_code == 422


async def test_batch_all_valid_is_accepted_in_order(client, alice, api_settings):
    tasks = [{"title": f"batch {i}"} for i in range(50)]
    response = await client.post("/tasks/batch", json={"tasks": tasks}, headers=alice.headers)
    assert response.status_code == 202, response.text
    items = response.json()["tasks"]
    assert len(items) == 50
    found = await read_commands(api_settings, {uuid.UUID(i["commandId"]) for i in items})
    for index, item in enumerate(items):
        command = found[uuid.UUID(item["commandId"])][1]
        assert command.payload.title == f"batch {index}"
        assert str(command.task_id) == item["taskId"]


async def test_batch_with_invalid_items_names_each_and_publishes_nothing(
    client, alice: ApiUser, bob: ApiUser, api_settings
):
    marker = f"must-not-publish-{uuid.uuid4().hex[:8]}"
    tasks = [{"title": f"{marker} {i}"} for i in range(10)]
    tasks[2] = {"title": ""}
    tasks[5] = {"title": marker, "priority": "whenever"}
    tasks[7] = {"title": marker, "projectId": "not-a-uuid"}
    response = await client.post("/tasks/batch", json={"tasks": tasks}, headers=alice.headers)
    assert response.status_code == 422
    paths = {e["path"] for e in response.json()["errors"]}
    assert paths == {"tasks[2].title", "tasks[5].priority", "tasks[7].projectId"}

    forbidden = [{"title": marker}, {"title": marker, "projectId": bob.personal_project_id}]
    denied = await client.post("/tasks/batch", json={"tasks": forbidden}, headers=alice.headers)
    assert denied.status_code == 422
    assert [e["path"] for e in denied.json()["errors"]] == ["tasks[1].projectId"]

    too_many = [{"title": marker}] * (api_settings.api.batch_max_items + 1)
    big = await client.post("/tasks/batch", json={"tasks": too_many}, headers=alice.headers)
    assert big.status_code == 422

    # a sentinel published afterwards: everything before it on the topic was read
    sentinel = (
        await client.post("/tasks", json={"title": "sentinel"}, headers=alice.headers)
    ).json()
    sentinel_id = uuid.UUID(sentinel["commandId"])
    seen = await read_commands(api_settings, {sentinel_id}, collect_all=True)
    titles = [getattr(c.payload, "title", "") or "" for _, c, _ in seen.values()]
    assert not [t for t in titles if t.startswith(marker)]
