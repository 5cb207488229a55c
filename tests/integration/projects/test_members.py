"""Listing members (paginated, members only) and re-ranking them under the rank rule."""

from __future__ import annotations

import base64
import itertools
import json
import uuid

import pytest
from sqlalchemy import text

from tests.integration.http_support import ApiUser, join_project, register_and_login
from tests.integration.projects.conftest import Team


def encode_raw(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


RANK = {"viewer": 0, "member": 1, "maintainer": 2, "owner": 3}


@pytest.mark.parametrize("role", ["owner", "maintainer", "member", "viewer"])
async def test_every_member_lists_the_members(client, team: Team, role):
    response = await client.get(
        f"/projects/{team.project_id}/members", headers=team.by_role(role).headers
    )
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["nextCursor"] is None
    assert [(m["userId"], m["role"]) for m in page["items"]] == [
        (team.owner.id, "owner"),
        (team.maintainer.id, "maintainer"),
        (team.member.id, "member"),
        (team.viewer.id, "viewer"),
    ]
    assert page["items"][1]["name"] == "Maintainer"
    assert all(m["joinedAt"] for m in page["items"])


async def test_strangers_and_unknown_projects_get_404(client, team: Team, admin: ApiUser):
    stranger = await client.get(
        f"/projects/{team.project_id}/members", headers=team.stranger.headers
    )
    unknown = await client.get(f"/projects/{uuid.uuid4()}/members", headers=team.owner.headers)
    assert stranger.status_code == unknown.status_code == 404
    assert stranger.json()["detail"] == unknown.json()["detail"]
    assert (
        await client.get(f"/projects/{team.project_id}/members", headers=admin.headers)
    ).status_code == 200


async def test_members_page_with_cursors(client, team: Team):
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (
            await client.get(
                f"/projects/{team.project_id}/members", params=params, headers=team.member.headers
            )
        ).json()
        seen += [m["userId"] for m in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == [team.owner.id, team.maintainer.id, team.member.id, team.viewer.id]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": -1},
        {"limit": "many"},
        {"cursor": "!!"},
        {"cursor": "a" * 201},
        {"cursor": "a\x00"},
        # a well-formed position whose datetime overflows once converted to UTC
        {"cursor": encode_raw(["9999-12-31T23:00:00-05:00", str(uuid.uuid4())])},
        {"cursor": encode_raw(["2026-01-01T00:00:00Z", "not-a-uuid"])},
    ],
)
async def test_members_list_bad_query(client, team: Team, params):
    response = await client.get(
        f"/projects/{team.project_id}/members", params=params, headers=team.member.headers
    )
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_huge_limit_is_capped(client, team: Team):
    response = await client.get(
        f"/projects/{team.project_id}/members",
        params={"limit": 1_000_000},
        headers=team.member.headers,
    )
    assert response.status_code == 200 and len(response.json()["items"]) == 4


# --- PATCH /projects/{id}/members/{userId} ---------------------------------------------------

CALLERS = ["owner", "maintainer", "member", "viewer"]
TARGETS = ["maintainer", "member", "viewer"]
NEW_ROLES = ["owner", "maintainer", "member", "viewer"]


def expected_status(caller: str, target: str, new_role: str) -> int:
    if RANK[caller] < RANK["maintainer"]:
        return 403
    if caller == "owner":
        return 200
    if RANK[new_role] >= RANK["maintainer"]:
        return 403  # only owners grant maintainer or owner
    if RANK[target] >= RANK[caller]:
        return 403  # nobody changes a rank at or above their own (owners excepted)
    return 200


@pytest.mark.parametrize("caller", CALLERS)
async def test_role_change_follows_the_rank_rule(client, team: Team, caller):
    """Every (target role, new role) pair for one caller role; each target is a fresh member
    of the target role, so a caller can target a peer of its own role."""
    outcomes = {}
    for target, new_role in itertools.product(TARGETS, NEW_ROLES):
        peer = await register_and_login(client, "Peer")
        await join_project(
            client, team.project_id, team.owner.headers, peer.email, peer.headers, target
        )
        response = await client.patch(
            f"/projects/{team.project_id}/members/{peer.id}",
            json={"role": new_role},
            headers=team.by_role(caller).headers,
        )
        members = (
            await client.get(
                f"/projects/{team.project_id}/members",
                params={"limit": 200},
                headers=team.owner.headers,
            )
        ).json()["items"]
        role_now = next(m["role"] for m in members if m["userId"] == peer.id)
        outcomes[target, new_role] = (response.status_code, role_now)
    assert outcomes == {
        (target, new_role): (
            expected_status(caller, target, new_role),
            new_role if expected_status(caller, target, new_role) == 200 else target,
        )
        for target, new_role in itertools.product(TARGETS, NEW_ROLES)
    }


async def test_role_change_records_an_event_and_changes_rights(client, team: Team, session_factory):
    promoted = await client.patch(
        f"/projects/{team.project_id}/members/{team.member.id}",
        json={"role": "maintainer"},
        headers=team.owner.headers,
    )
    assert promoted.status_code == 200
    assert promoted.json() == {
        "projectId": team.project_id,
        "userId": team.member.id,
        "role": "maintainer",
    }
    renamed = await client.patch(
        f"/projects/{team.project_id}",
        json={"name": "By the new maintainer"},
        headers=team.member.headers,
    )
    assert renamed.status_code == 200
    async with session_factory() as session:
        payload = await session.scalar(
            text(
                "SELECT payload FROM outbox WHERE aggregate_id = :p"
                " AND event_type = 'project.member_role_changed'"
            ),
            {"p": team.project_id},
        )
    assert payload is not None and team.member.id.encode() in bytes(payload)


async def test_the_owner_and_the_last_owner_keep_the_role(client, team: Team):
    base = f"/projects/{team.project_id}/members"
    self_demotion = await client.patch(
        f"{base}/{team.owner.id}", json={"role": "maintainer"}, headers=team.owner.headers
    )
    assert self_demotion.status_code == 409
    # a co-owner may be demoted by an owner, and may demote themselves, but not the owner
    co = await client.patch(
        f"{base}/{team.maintainer.id}", json={"role": "owner"}, headers=team.owner.headers
    )
    assert co.status_code == 200
    by_co_owner = await client.patch(
        f"{base}/{team.owner.id}", json={"role": "member"}, headers=team.maintainer.headers
    )
    assert by_co_owner.status_code == 409
    step_down = await client.patch(
        f"{base}/{team.maintainer.id}", json={"role": "maintainer"}, headers=team.maintainer.headers
    )
    assert step_down.status_code == 200
    same = await client.patch(
        f"{base}/{team.owner.id}", json={"role": "owner"}, headers=team.owner.headers
    )
    assert same.status_code == 200


async def test_an_admin_changes_roles(client, team: Team, admin: ApiUser):
    response = await client.patch(
        f"/projects/{team.project_id}/members/{team.viewer.id}",
        json={"role": "maintainer"},
        headers=admin.headers,
    )
    assert response.status_code == 200


async def test_role_change_refusals(client, team: Team, alice: ApiUser):
    base = f"/projects/{team.project_id}/members"
    stranger = await client.patch(
        f"{base}/{team.member.id}", json={"role": "viewer"}, headers=team.stranger.headers
    )
    assert stranger.status_code == 404
    not_member = await client.patch(
        f"{base}/{alice.id}", json={"role": "viewer"}, headers=team.owner.headers
    )
    assert not_member.status_code == 404
    unknown_project = await client.patch(
        f"/projects/{uuid.uuid4()}/members/{team.member.id}",
        json={"role": "viewer"},
        headers=team.owner.headers,
    )
    assert unknown_project.status_code == 404
    for body in ({}, {"role": "king"}, {"role": None}, {"role": 3}, {"role": "viewer\x00"}, []):
        response = await client.patch(
            f"{base}/{team.member.id}", json=body, headers=team.owner.headers
        )
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_owners_remove_co_owners_but_never_the_designated_owner(client, team: Team):
    base = f"/projects/{team.project_id}/members"
    promoted = await client.patch(
        f"{base}/{team.maintainer.id}", json={"role": "owner"}, headers=team.owner.headers
    )
    assert promoted.status_code == 200
    by_co_owner = await client.delete(f"{base}/{team.owner.id}", headers=team.maintainer.headers)
    assert by_co_owner.status_code == 409
    removed = await client.delete(f"{base}/{team.maintainer.id}", headers=team.owner.headers)
    assert removed.status_code == 204
    assert (
        await client.get(f"/projects/{team.project_id}", headers=team.maintainer.headers)
    ).status_code == 404


async def test_an_admin_archives_like_an_owner(client, team: Team, admin: ApiUser):
    archived = await client.post(f"/projects/{team.project_id}/archive", headers=admin.headers)
    assert archived.status_code == 200 and archived.json()["archivedAt"] is not None


async def test_a_removal_and_a_leave_each_write_one_member_removed_event(
    client, team: Team, session_factory
):
    base = f"/projects/{team.project_id}/members"
    removed = await client.delete(f"{base}/{team.viewer.id}", headers=team.maintainer.headers)
    assert removed.status_code == 204
    left = await client.delete(f"{base}/{team.member.id}", headers=team.member.headers)
    assert left.status_code == 204
    async with session_factory() as session:
        payloads = (
            await session.scalars(
                text(
                    "SELECT payload FROM outbox WHERE aggregate_id = :p"
                    " AND event_type = 'project.member_removed' ORDER BY created_at"
                ),
                {"p": team.project_id},
            )
        ).all()
    data = [json.loads(bytes(p))["data"] for p in payloads]
    assert [(d["userId"], d["left"]) for d in data] == [
        (team.viewer.id, False),
        (team.member.id, True),
    ]
