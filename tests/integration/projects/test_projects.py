"""Projects, memberships, stats; non-members see 404."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from tests.integration.http_support import ApiUser, join_project
from tests.integration.ops.support import register_admin


async def test_project_lifecycle_and_membership(client, alice: ApiUser, bob: ApiUser):
    created = await client.post(
        "/projects", json={"name": "Launch", "description": "Q3"}, headers=alice.headers
    )
    assert created.status_code == 201
    project = created.json()
    assert project["role"] == "owner" and project["ownerId"] == alice.id
    assert project["archivedAt"] is None

    mine = await client.get("/projects", headers=alice.headers)
    assert {p["id"] for p in mine.json()} == {project["id"], alice.personal_project_id}

    hidden = await client.get(f"/projects/{project['id']}", headers=bob.headers)
    assert hidden.status_code == 404

    await join_project(client, project["id"], alice.headers, bob.email, bob.headers)
    seen = await client.get(f"/projects/{project['id']}", headers=bob.headers)
    assert seen.status_code == 200 and seen.json()["role"] == "member"
    # a member cannot invite
    forbidden = await client.post(
        f"/projects/{project['id']}/invitations",
        json={"email": "someone@example.com", "role": "viewer"},
        headers=bob.headers,
    )
    assert forbidden.status_code == 403

    removed = await client.delete(
        f"/projects/{project['id']}/members/{bob.id}", headers=alice.headers
    )
    assert removed.status_code == 204
    gone = await client.get(f"/projects/{project['id']}", headers=bob.headers)
    assert gone.status_code == 404
    owner = await client.delete(
        f"/projects/{project['id']}/members/{alice.id}", headers=alice.headers
    )
    assert owner.status_code == 409


async def test_adding_without_consent_is_for_admins(client, alice, bob, session_factory):
    project = (await client.post("/projects", json={"name": "P"}, headers=alice.headers)).json()
    by_owner = await client.post(
        f"/projects/{project['id']}/members",
        json={"userId": bob.id, "role": "viewer"},
        headers=alice.headers,
    )
    assert by_owner.status_code == 403
    assert by_owner.json()["type"].endswith("/forbidden")
    by_stranger = await client.post(
        f"/projects/{project['id']}/members",
        json={"userId": bob.id, "role": "viewer"},
        headers=bob.headers,
    )
    assert by_stranger.status_code == 404
    admin = await register_admin(client, session_factory)
    added = await client.post(
        f"/projects/{project['id']}/members",
        json={"userId": bob.id, "role": "viewer"},
        headers=admin.headers,
    )
    assert added.status_code == 201, added.text
    again = await client.post(
        f"/projects/{project['id']}/members",
        json={"userId": bob.id, "role": "viewer"},
        headers=admin.headers,
    )
    assert again.status_code == 409
    unknown = await client.post(
        f"/projects/{project['id']}/members",
        json={"userId": str(uuid.uuid4()), "role": "viewer"},
        headers=admin.headers,
    )
    assert unknown.status_code == 404
    async with session_factory() as session:
        types = (
            (
                await session.execute(
                    text("SELECT event_type FROM outbox WHERE aggregate_id = :p ORDER BY id"),
                    {"p": project["id"]},
                )
            )
            .scalars()
            .all()
        )
    assert types == ["project.created", "project.member_added"]


async def test_stats_read_what_the_consumer_wrote(client, alice, bob, session_factory):
    project_id = alice.personal_project_id
    empty = await client.get(f"/projects/{project_id}/stats", headers=alice.headers)
    assert empty.status_code == 200
    assert empty.json()["total"] == 0 and empty.json()["activity"] == []
    async with session_factory() as session:
        await session.execute(
            text(
                "INSERT INTO project_stats (project_id, todo, in_progress, done)"
                " VALUES (:p, 3, 2, 1)"
            ),
            {"p": project_id},
        )
        # Overdue is counted from the tasks when read: one open task past its deadline.
        await session.execute(
            text(
                "INSERT INTO tasks (id, project_id, title, created_by, deadline)"
                " VALUES (gen_random_uuid(), :p, 'late', :u, now() - interval '1 hour')"
            ),
            {"p": project_id, "u": alice.id},
        )
        await session.execute(
            text(
                "INSERT INTO project_activity (project_id, minute, created, completed)"
                " VALUES (:p, date_trunc('minute', now()), 6, 1)"
            ),
            {"p": project_id},
        )
        await session.commit()
    stats = (await client.get(f"/projects/{project_id}/stats", headers=alice.headers)).json()
    assert stats["counts"] == {"todo": 3, "inProgress": 2, "inReview": 0, "done": 1, "cancelled": 0}
    assert stats["total"] == 6 and stats["overdue"] == 1
    assert stats["activity"][0]["created"] == 6
    other = await client.get(f"/projects/{project_id}/stats", headers=bob.headers)
    assert other.status_code == 404
