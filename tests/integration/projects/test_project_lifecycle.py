"""Rename, archive, delete/restore/purge and ownership transfer of a project."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import text

from taskstream.settings import Settings
from tests.integration.http_support import ApiUser, insert_task
from tests.integration.operations.test_cli import cli
from tests.integration.projects.conftest import Team, make_team

ROLES = ["owner", "maintainer", "member", "viewer", "stranger"]


async def outbox_types(session_factory, project_id: str) -> list[str]:
    async with session_factory() as session:
        rows = await session.execute(
            text("SELECT event_type FROM outbox WHERE aggregate_id = :p ORDER BY id"),
            {"p": project_id},
        )
        return list(rows.scalars().all())


def assert_problem(response: httpx.Response, status: int, slug: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    if slug is not None:
        assert response.json()["type"].endswith(f"/{slug}"), response.json()


# --- PATCH /projects/{id} --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "expected"),
    [("owner", 200), ("maintainer", 200), ("member", 403), ("viewer", 403), ("stranger", 404)],
)
async def test_rename_needs_maintainer(client, team: Team, session_factory, role, expected):
    response = await client.patch(
        f"/projects/{team.project_id}",
        json={"name": f"Renamed by {role}", "description": "new"},
        headers=team.by_role(role).headers,
    )
    assert response.status_code == expected, response.text
    project = (await client.get(f"/projects/{team.project_id}", headers=team.owner.headers)).json()
    if expected == 200:
        assert response.json()["name"] == project["name"] == f"Renamed by {role}"
        assert project["description"] == "new"
        assert response.json()["role"] == role
        assert (await outbox_types(session_factory, team.project_id))[-1] == "project.updated"
    else:
        assert project["name"] == "Team"
        assert "project.updated" not in await outbox_types(session_factory, team.project_id)


async def test_rename_by_an_admin_and_clearing_the_description(client, team: Team, admin):
    response = await client.patch(
        f"/projects/{team.project_id}", json={"description": None}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["description"] is None and response.json()["name"] == "Team"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "a\x00b"},
        {"name": "x" * 201},
        {"name": 42},
        {"name": None},
        {"description": "d" * 10_001},
        {"description": "\x00"},
        {"description": ["list"]},
        [],
        "name",
    ],
)
async def test_rename_refuses_bad_input(client, team: Team, body):
    response = await client.patch(
        f"/projects/{team.project_id}", json=body, headers=team.owner.headers
    )
    assert_problem(response, 422)
    project = (await client.get(f"/projects/{team.project_id}", headers=team.owner.headers)).json()
    assert project["name"] == "Team"


async def test_rename_unknown_or_malformed_ids(client, team: Team):
    unknown = await client.patch(
        f"/projects/{uuid.uuid4()}", json={"name": "x"}, headers=team.owner.headers
    )
    assert_problem(unknown, 404)
    malformed = await client.patch("/projects/nope", json={"name": "x"}, headers=team.owner.headers)
    assert_problem(malformed, 404)


# --- archive / unarchive ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "expected"),
    [("owner", 200), ("maintainer", 403), ("member", 403), ("viewer", 403), ("stranger", 404)],
)
async def test_archive_needs_the_owner(client, team: Team, role, expected):
    for action in ("archive", "unarchive"):
        response = await client.post(
            f"/projects/{team.project_id}/{action}", headers=team.by_role(role).headers
        )
        assert response.status_code == expected, (action, response.text)
        if expected == 200:
            archived = response.json()["archivedAt"]
            assert (archived is not None) == (action == "archive")


async def test_archive_is_idempotent_and_readable(client, team: Team, session_factory):
    task_id = await insert_task(session_factory, team.project_id, team.member.id, title="Kept")
    first = await client.post(f"/projects/{team.project_id}/archive", headers=team.owner.headers)
    again = await client.post(f"/projects/{team.project_id}/archive", headers=team.owner.headers)
    assert first.status_code == again.status_code == 200
    assert first.json()["archivedAt"] == again.json()["archivedAt"]
    assert (await outbox_types(session_factory, team.project_id)).count("project.archived") == 1
    # history stays readable by every member
    for user in (team.owner, team.member, team.viewer):
        project = await client.get(f"/projects/{team.project_id}", headers=user.headers)
        assert project.status_code == 200 and project.json()["archivedAt"] is not None
        task = await client.get(f"/tasks/{task_id}", headers=user.headers)
        assert task.status_code == 200 and task.json()["title"] == "Kept"
        listed = await client.get(
            "/tasks", params={"projectId": team.project_id}, headers=user.headers
        )
        assert [t["id"] for t in listed.json()["items"]] == [task_id]
        members = await client.get(f"/projects/{team.project_id}/members", headers=user.headers)
        assert members.status_code == 200
    assert (await client.get(f"/tasks/{task_id}", headers=team.stranger.headers)).status_code == 404


async def test_personal_project_cannot_be_archived_or_deleted(client, alice: ApiUser):
    for method, path in (
        ("POST", "archive"),
        ("POST", "unarchive"),
        ("DELETE", ""),
    ):
        response = await client.request(
            method,
            f"/projects/{alice.personal_project_id}/{path}".rstrip("/"),
            headers=alice.headers,
        )
        assert_problem(response, 409)
    assert (
        await client.get(f"/projects/{alice.personal_project_id}", headers=alice.headers)
    ).json()["archivedAt"] is None


async def test_archive_unknown_project_is_404(client, alice: ApiUser):
    for action in ("archive", "unarchive", "restore"):
        response = await client.post(f"/projects/{uuid.uuid4()}/{action}", headers=alice.headers)
        assert_problem(response, 404)


# --- delete / restore / purge ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "expected"),
    [("maintainer", 403), ("member", 403), ("viewer", 403), ("stranger", 404)],
)
async def test_only_the_owner_deletes(client, team: Team, role, expected):
    response = await client.delete(
        f"/projects/{team.project_id}", headers=team.by_role(role).headers
    )
    assert response.status_code == expected
    assert (
        await client.get(f"/projects/{team.project_id}", headers=team.owner.headers)
    ).status_code == 200


async def test_a_deleted_project_is_gone_for_everyone_until_restored(
    client, team: Team, session_factory, admin: ApiUser
):
    task_id = await insert_task(session_factory, team.project_id, team.member.id)
    before = await client.get("/tasks", params={"createdBy": team.member.id}, headers=admin.headers)
    assert [t["id"] for t in before.json()["items"]] == [task_id]
    deleted = await client.delete(f"/projects/{team.project_id}", headers=team.owner.headers)
    assert deleted.status_code == 204
    for user in (team.owner, team.maintainer, team.member, admin):
        assert_problem(await client.get(f"/projects/{team.project_id}", headers=user.headers), 404)
        assert_problem(await client.get(f"/tasks/{task_id}", headers=user.headers), 404)
        assert_problem(
            await client.get(f"/projects/{team.project_id}/members", headers=user.headers), 404
        )
    mine = (await client.get("/projects", headers=team.member.headers)).json()
    assert team.project_id not in {p["id"] for p in mine}
    for user in (team.member, admin):  # an admin's unfiltered list skips it too
        by_member = {"createdBy": team.member.id}
        listed = await client.get("/tasks", params=by_member, headers=user.headers)
        assert listed.status_code == 200, listed.text
        assert task_id not in {t["id"] for t in listed.json()["items"]}
    # commands are refused like for a project that does not exist
    create = await client.post(
        "/tasks", json={"title": "t", "projectId": team.project_id}, headers=team.member.headers
    )
    assert_problem(create, 404)
    assert_problem(
        await client.patch(f"/tasks/{task_id}", json={"title": "x"}, headers=team.member.headers),
        404,
    )
    # deleting again, archiving, renaming: not found
    assert_problem(
        await client.delete(f"/projects/{team.project_id}", headers=team.owner.headers), 404
    )
    assert_problem(
        await client.post(f"/projects/{team.project_id}/archive", headers=team.owner.headers), 404
    )
    # only an owner (or an admin) restores; others see nothing
    for user in (team.maintainer, team.member, team.stranger):
        restore = await client.post(f"/projects/{team.project_id}/restore", headers=user.headers)
        assert_problem(restore, 404)
    restored = await client.post(f"/projects/{team.project_id}/restore", headers=team.owner.headers)
    assert restored.status_code == 200, restored.text
    assert restored.json()["role"] == "owner"
    assert (await client.get(f"/tasks/{task_id}", headers=team.member.headers)).status_code == 200
    # a live project is not "restorable"
    assert_problem(
        await client.post(f"/projects/{team.project_id}/restore", headers=team.owner.headers), 404
    )
    types = await outbox_types(session_factory, team.project_id)
    assert types[-2:] == ["project.deleted", "project.restored"]


async def test_an_admin_may_restore(client, team: Team, admin: ApiUser):
    await client.delete(f"/projects/{team.project_id}", headers=team.owner.headers)
    restored = await client.post(f"/projects/{team.project_id}/restore", headers=admin.headers)
    assert restored.status_code == 200


async def _age_deletion(session_factory, project_id: str, days: int) -> None:
    async with session_factory() as session:
        await session.execute(
            text(
                "UPDATE projects SET deleted_at = now() - make_interval(days => :d) WHERE id = :p"
            ),
            {"d": days, "p": project_id},
        )
        await session.commit()


async def test_restore_after_the_grace_period_is_404_and_the_purge_removes_it(
    client, session_factory, settings: Settings
):
    old, recent = await make_team(client, "Old"), await make_team(client, "Recent")
    old_task = await insert_task(session_factory, old.project_id, old.member.id)
    await insert_task(session_factory, recent.project_id, recent.member.id)
    invited = await client.post(
        f"/projects/{old.project_id}/invitations",
        json={"email": "later@example.com"},
        headers=old.owner.headers,
    )
    assert invited.status_code == 201
    for team in (old, recent):
        assert (
            await client.delete(f"/projects/{team.project_id}", headers=team.owner.headers)
        ).status_code == 204
    await _age_deletion(session_factory, old.project_id, settings.projects.delete_grace_days + 1)
    late = await client.post(f"/projects/{old.project_id}/restore", headers=old.owner.headers)
    assert_problem(late, 404)

    done = cli(settings, "projects", "purge-deleted")
    assert "purged" in done.stdout
    async with session_factory() as session:

        async def count(sql: str, project_id: str) -> int:
            return int((await session.execute(text(sql), {"p": project_id})).scalar_one())

        assert await count("SELECT count(*) FROM projects WHERE id = :p", old.project_id) == 0
        assert await count("SELECT count(*) FROM tasks WHERE project_id = :p", old.project_id) == 0
        assert (
            await count(
                "SELECT count(*) FROM project_members WHERE project_id = :p", old.project_id
            )
            == 0
        )
        assert (
            await count(
                "SELECT count(*) FROM project_invitations WHERE project_id = :p", old.project_id
            )
            == 0
        )
        # within its grace period: kept, with its tasks
        assert await count("SELECT count(*) FROM projects WHERE id = :p", recent.project_id) == 1
        assert (
            await count("SELECT count(*) FROM tasks WHERE project_id = :p", recent.project_id) == 1
        )
    assert_problem(await client.get(f"/tasks/{old_task}", headers=old.member.headers), 404)
    restored = await client.post(
        f"/projects/{recent.project_id}/restore", headers=recent.owner.headers
    )
    assert restored.status_code == 200


# --- ownership transfer ----------------------------------------------------------------------


async def test_transfer_makes_the_member_owner_and_the_owner_maintainer(
    client, team: Team, session_factory
):
    response = await client.post(
        f"/projects/{team.project_id}/transfer",
        json={"userId": team.member.id},
        headers=team.owner.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["ownerId"] == team.member.id
    assert response.json()["role"] == "maintainer"
    members = await client.get(f"/projects/{team.project_id}/members", headers=team.owner.headers)
    roles = {m["userId"]: m["role"] for m in members.json()["items"]}
    assert roles[team.member.id] == "owner" and roles[team.owner.id] == "maintainer"
    assert (await outbox_types(session_factory, team.project_id))[
        -1
    ] == "project.ownership_transferred"
    # the new owner has the owner's powers, the previous one no longer
    assert (
        await client.post(f"/projects/{team.project_id}/archive", headers=team.owner.headers)
    ).status_code == 403
    assert (
        await client.post(f"/projects/{team.project_id}/archive", headers=team.member.headers)
    ).status_code == 200


@pytest.mark.parametrize(
    ("role", "expected"),
    [("maintainer", 403), ("member", 403), ("viewer", 403), ("stranger", 404)],
)
async def test_only_the_owner_transfers(client, team: Team, role, expected):
    response = await client.post(
        f"/projects/{team.project_id}/transfer",
        json={"userId": team.viewer.id},
        headers=team.by_role(role).headers,
    )
    assert response.status_code == expected


async def test_transfer_refusals(client, team: Team, alice: ApiUser):
    base = f"/projects/{team.project_id}/transfer"
    not_member = await client.post(base, json={"userId": alice.id}, headers=team.owner.headers)
    assert_problem(not_member, 404)
    unknown = await client.post(
        base, json={"userId": str(uuid.uuid4())}, headers=team.owner.headers
    )
    assert_problem(unknown, 404)
    to_self = await client.post(base, json={"userId": team.owner.id}, headers=team.owner.headers)
    assert_problem(to_self, 409)
    for body in ({}, {"userId": "abc"}, {"userId": 1}, {"userId": "\x00"}, []):
        assert_problem(await client.post(base, json=body, headers=team.owner.headers), 422)
    personal = await client.post(
        f"/projects/{alice.personal_project_id}/transfer",
        json={"userId": team.owner.id},
        headers=alice.headers,
    )
    assert_problem(personal, 409)


async def test_ownership_cannot_go_to_a_deactivated_member(client, team: Team, admin: ApiUser):
    deactivated = await client.post(
        f"/admin/users/{team.member.id}/deactivate", headers=admin.headers
    )
    assert deactivated.status_code == 200, deactivated.text
    # nobody could act as the project's owner any more, and the owner could not take it back
    refused = await client.post(
        f"/projects/{team.project_id}/transfer",
        json={"userId": team.member.id},
        headers=team.owner.headers,
    )
    assert_problem(refused, 404)
    project = await client.get(f"/projects/{team.project_id}", headers=team.owner.headers)
    assert project.json()["ownerId"] == team.owner.id
