"""An archived project refuses every new task command with 409 ``project-archived``, batches
included; a command acknowledged before the archive still applies; unarchiving reopens it."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from taskstream.db import transaction
from taskstream.settings import Settings
from taskstream.tasks.apply import apply_task_commands
from tests.integration.http_support import insert_task, read_commands
from tests.integration.projects.conftest import Team

COMMANDS = [
    ("PATCH", "", {"title": "x"}),
    ("DELETE", "", None),
    ("POST", "/assign", {"assigneeId": None}),
    ("POST", "/transition", {"to": "in_progress"}),
    ("POST", "/reviews", {"verdict": "approve"}),
]


def assert_archived(response) -> None:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == "https://taskstream.dev/problems/project-archived"
    assert "archived" in body["detail"]


async def _archive(client, team: Team) -> None:
    response = await client.post(f"/projects/{team.project_id}/archive", headers=team.owner.headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("method", "suffix", "body"), COMMANDS)
async def test_commands_on_tasks_of_an_archived_project_are_refused(
    client, team: Team, session_factory, method, suffix, body
):
    task_id = await insert_task(session_factory, team.project_id, team.member.id)
    await _archive(client, team)
    for user in (team.owner, team.maintainer, team.member):
        response = await client.request(
            method, f"/tasks/{task_id}{suffix}", json=body, headers=user.headers
        )
        assert_archived(response)
    # a stranger still learns nothing about the task
    hidden = await client.request(
        method, f"/tasks/{task_id}{suffix}", json=body, headers=team.stranger.headers
    )
    assert hidden.status_code == 404


async def test_creates_and_batches_are_refused_whole(client, team: Team):
    await _archive(client, team)
    create = await client.post(
        "/tasks", json={"title": "t", "projectId": team.project_id}, headers=team.member.headers
    )
    assert_archived(create)
    batch = await client.post(
        "/tasks/batch",
        json={"tasks": [{"title": "a", "projectId": team.project_id}, {"title": "b"}]},
        headers=team.member.headers,
    )
    assert_archived(batch)
    # the other item of the batch (the personal project) was not published either
    only_personal = await client.post(
        "/tasks/batch", json={"tasks": [{"title": "b"}]}, headers=team.member.headers
    )
    assert only_personal.status_code == 202


async def test_unarchiving_reopens_the_project(client, team: Team):
    await _archive(client, team)
    unarchived = await client.post(
        f"/projects/{team.project_id}/unarchive", headers=team.owner.headers
    )
    assert unarchived.status_code == 200
    create = await client.post(
        "/tasks", json={"title": "t", "projectId": team.project_id}, headers=team.member.headers
    )
    assert create.status_code == 202, create.text


async def test_a_command_acknowledged_before_the_archive_applies(
    client, team: Team, api_settings: Settings, session_factory
):
    accepted = await client.post(
        "/tasks",
        json={"title": "Just in time", "projectId": team.project_id},
        headers=team.member.headers,
    )
    assert accepted.status_code == 202
    command_id = uuid.UUID(accepted.json()["commandId"])
    await _archive(client, team)
    _, command, _ = (await read_commands(api_settings, {command_id}))[command_id]
    async with transaction(session_factory) as session:
        result = await apply_task_commands(session, [command])
    assert len(result.applied) == 1
    async with session_factory() as session:
        title = await session.scalar(
            text("SELECT title FROM tasks WHERE id = :t"), {"t": accepted.json()["taskId"]}
        )
    assert title == "Just in time"
