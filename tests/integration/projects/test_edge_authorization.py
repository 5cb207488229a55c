"""Authorization at the edge: rank rules for removal and re-ranking, no existence leak, seed
compatibility."""

from __future__ import annotations

import itertools
import uuid

import httpx
import pytest

from taskstream.messages import CreateTask
from tests.integration.http_support import (
    ApiUser,
    insert_task,
    join_project,
    read_commands,
    register_and_login,
)

ROLES = ["owner", "maintainer", "member", "viewer"]
RANK = {role: rank for rank, role in enumerate(reversed(ROLES))}


async def _project_with(client: httpx.AsyncClient, owner: ApiUser, roles: dict[str, ApiUser]):
    project = (await client.post("/projects", json={"name": "Ranks"}, headers=owner.headers)).json()
    for role, user in roles.items():
        await join_project(client, project["id"], owner.headers, user.email, user.headers, role)
    return project["id"]


@pytest.mark.parametrize(("caller", "target"), list(itertools.product(ROLES, ROLES)))
async def test_member_removal_follows_rank(client, caller: str, target: str):
    owner = await register_and_login(client, "Owner")
    people = {"owner": owner}
    others: dict[str, ApiUser] = {}
    for role in ROLES[1:]:
        # two of each role below owner, so a caller can target a peer of its own role
        others[role] = await register_and_login(client, role.title())
        others[f"{role}-2"] = await register_and_login(client, role.title())
    project_id = await _project_with(
        client, owner, {k.removesuffix("-2"): v for k, v in others.items() if k.endswith("-2")}
    )
    for role in ROLES[1:]:
        user = others[role]
        await join_project(client, project_id, owner.headers, user.email, user.headers, role)
    people.update(others)
    caller_user = people[caller]
    target_user = people["owner"] if target == "owner" else people[f"{target}-2"]
    if caller == target == "owner":
        target_user = owner
    response = await client.delete(
        f"/projects/{project_id}/members/{target_user.id}", headers=caller_user.headers
    )
    if caller_user is target_user:
        expected = 409  # the owner cannot leave their own project
    elif RANK[caller] >= RANK["maintainer"] and RANK[caller] > RANK[target]:
        expected = 204  # removing others needs maintainer, and only of a lower rank
    else:
        expected = 403
    assert response.status_code == expected, (caller, target, response.text)


@pytest.mark.parametrize("role", ROLES[1:])
async def test_anyone_but_the_owner_may_leave(client, role: str):
    owner = await register_and_login(client, "Owner")
    leaver = await register_and_login(client, "Leaver")
    project_id = await _project_with(client, owner, {role: leaver})
    left = await client.delete(
        f"/projects/{project_id}/members/{leaver.id}", headers=leaver.headers
    )
    assert left.status_code == 204
    assert (await client.get(f"/projects/{project_id}", headers=leaver.headers)).status_code == 404


COMMANDS = [
    ("PATCH", "", {"title": "x"}),
    ("DELETE", "", None),
    ("POST", "/assign", {"assigneeId": None}),
    ("POST", "/transition", {"to": "in_progress"}),
    ("POST", "/reviews", {"verdict": "approve"}),
]


@pytest.mark.parametrize(("method", "suffix", "body"), COMMANDS)
async def test_a_hidden_task_answers_like_a_random_id(
    client, alice: ApiUser, bob: ApiUser, session_factory, method, suffix, body
):
    hidden = await insert_task(session_factory, alice.personal_project_id, alice.id)
    random_id = str(uuid.uuid4())

    async def call(task_id: str) -> httpx.Response:
        return await client.request(
            method, f"/tasks/{task_id}{suffix}", json=body, headers=bob.headers
        )

    seen, unseen = await call(hidden), await call(random_id)
    assert seen.status_code == unseen.status_code == 404
    assert seen.headers["content-type"] == unseen.headers["content-type"]
    seen_body, unseen_body = seen.json(), unseen.json()
    # ``instance`` is the request path, which holds the id the caller sent
    assert seen_body.pop("instance").replace(hidden, "ID") == unseen_body.pop("instance").replace(
        random_id, "ID"
    )
    assert seen_body == unseen_body


async def test_express_seed_body_with_an_integer_user_id_is_accepted(
    client, alice: ApiUser, api_settings
):
    response = await client.post(
        "/tasks", json={"title": "From the seed", "userId": 1}, headers=alice.headers
    )
    assert response.status_code == 202, response.text
    command_id = uuid.UUID(response.json()["commandId"])
    _, command, _ = (await read_commands(api_settings, {command_id}))[command_id]
    assert isinstance(command.payload, CreateTask)
    assert str(command.actor.user_id) == alice.id


@pytest.mark.parametrize(
    "user_id", ["abc", 1.5, True, None, "00000000-0000-0000-0000-000000000001"]
)
async def test_any_scalar_user_id_is_ignored(client, alice: ApiUser, user_id):
    response = await client.post(
        "/tasks", json={"title": "t", "userId": user_id}, headers=alice.headers
    )
    assert response.status_code == 202, response.text


@pytest.mark.parametrize("user_id", [[1], {"id": 1}])
async def test_a_structured_user_id_is_refused(client, alice: ApiUser, user_id):
    response = await client.post(
        "/tasks", json={"title": "t", "userId": user_id}, headers=alice.headers
    )
    assert response.status_code == 422
